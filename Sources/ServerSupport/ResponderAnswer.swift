import NIOCore

/// What a responder gives back for a request: the reply itself when it is at hand (a cache hit,
/// a refusal, a page of the server's own), or one to come.
///
/// A reply at hand is not wrapped in a future: on a cache hit, making the future, its callback
/// and its generic deinit were a measurable share of the edge's CPU per request.
public enum ResponderAnswer: Sendable {
    /// The reply, ready now.
    case now(ServerReply)
    /// A reply to come; the future always succeeds (failures become error replies).
    case later(EventLoopFuture<ServerReply>)

    /// The answer as a future on `loop` (for callers that chain).
    public func future(on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        switch self {
        case .now(let reply): loop.makeSucceededFuture(reply)
        case .later(let future): future
        }
    }

    /// `transform` applied to the reply: at once when it is at hand, otherwise when it comes
    /// (`@preconcurrency` as NIO's `map` is, which this stands in for).
    @preconcurrency
    public func map(_ transform: @escaping @Sendable (ServerReply) -> ServerReply) -> ResponderAnswer {
        switch self {
        case .now(let reply): .now(transform(reply))
        case .later(let future): .later(future.map(transform))
        }
    }
}
