import DurableStreams
import NIOCore
import ServerSupport

/// With `credentials = verify`: sends requests for `[[route]]` paths and all others to two
/// authorizing responders that differ in one thing. Both check credentials the same way (a
/// route path is an "other path": it needs the edge's `otherPathsScope`); but the edge's own
/// upstream credential, which replaces a reader's on authorised stream reads so that readers
/// share cache entries, must never travel to a route's upstream, a different server. Route
/// requests keep the client's own `Authorization`, as any reverse proxy passes it.
struct RouteSplitResponder: HTTPResponder {
    let isRouted: @Sendable (String) -> Bool
    let routed: any HTTPResponder
    let other: any HTTPResponder

    var maxBodyBytes: Int { other.maxBodyBytes }
    func refusal(_ error: ProtocolError) -> ServerReply { other.refusal(error) }
    func connectionOpened() { other.connectionOpened() }
    func connectionClosed() { other.connectionClosed() }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        (isRouted(request.head.uri) ? routed : other).respond(to: request, live: live, on: loop)
    }
}
