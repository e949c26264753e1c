import NIOCore

/// Sent outbound by `HTTPServerHandler` once the last part of a response is handed to the
/// channel: the pipelining handler releases the next request, and the connection guard starts
/// the idle clock once `flushed` completes. The server frames its own responses as bytes, so
/// the handlers in front cannot see where one ends.
public struct ResponseWritten: Sendable {
    /// Completes when the response's last byte reached the socket (or the write failed).
    public let flushed: EventLoopFuture<Void>

    public init(flushed: EventLoopFuture<Void>) {
        self.flushed = flushed
    }
}
