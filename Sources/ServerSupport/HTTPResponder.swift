import DurableStreams
import NIOCore

/// A server's request logic, as the shared connection handler (`HTTPServerHandler`) sees it:
/// one method from a complete request to a reply. Runs on the connection's event loop and never
/// blocks it.
public protocol HTTPResponder: Sendable {
    /// The largest request body accepted; larger ones are refused with 413 before they arrive.
    var maxBodyBytes: Int { get }

    /// Answers one request: with the reply at once when it is at hand, or with a future one that
    /// always succeeds (failures become error replies). `live` is cancelled if the client goes
    /// away or the server shuts down before the answer is ready.
    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer

    /// The answer to a request refused before it reached `respond` (malformed, too large, the
    /// server out of body budget); the connection closes after it.
    func refusal(_ error: ProtocolError) -> ServerReply

    /// A client connection opened or closed (for metrics).
    func connectionOpened()
    func connectionClosed()
}
