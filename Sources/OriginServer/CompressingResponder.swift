import DurableStreams
import NIOCore
import ServerSupport

/// A responder that compresses another's replies (`ResponseCompression`) before the connection
/// handler writes them. Compression lives here rather than in the channel pipeline so that it
/// does not depend on how the handler turns replies into bytes.
struct CompressingResponder: HTTPResponder {
    let inner: any HTTPResponder
    let compression: ResponseCompression

    init(_ inner: any HTTPResponder, compression: ResponseCompression) {
        self.inner = inner
        self.compression = compression
    }

    var maxBodyBytes: Int { inner.maxBodyBytes }

    /// Compresses on the connection's event loop, where the reply completes, as the pipeline
    /// compressor did.
    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        let compression = self.compression
        let head = request.head
        return inner.respond(to: request, live: live, on: loop).map { compression.reply($0, to: head) }
    }

    /// Refusals go out as they are: no request head is known to negotiate with, and their
    /// bodies are one-line reasons.
    func refusal(_ error: ProtocolError) -> ServerReply { inner.refusal(error) }

    func connectionOpened() { inner.connectionOpened() }
    func connectionClosed() { inner.connectionClosed() }
}
