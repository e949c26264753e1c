import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// The per-connection channel handler: feeds request parts to `RequestStateMachine`, passes
/// complete requests to `StreamService`, and writes replies, including streaming SSE ones.
final class StreamHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, QuiescingHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: StreamService
    private var connection: HTTPConnection
    private var context: ChannelHandlerContext?
    private var live: LiveRequest?
    private var session: SSESession?

    /// A complete request held back while earlier responses still wait for a client that is
    /// not reading: it is handled once they drain (see `channelWritabilityChanged`).
    private var parked: (head: HTTPRequestHead, body: ByteBuffer)?

    init(service: StreamService, bodyBudget: RequestBodyBudget? = nil) {
        self.service = service
        self.connection = HTTPConnection(maxBodyBytes: service.configuration.maxBodyBytes, bodyBudget: bodyBudget)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        service.metrics.openConnections.increment()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        service.metrics.openConnections.decrement()
        connection.releaseBody()
        parked = nil
        releaseRequest()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch connection.read(unwrapInboundIn(data)) {
        case .none:
            break
        case .process(let head, let body):
            // A client that pipelines requests but does not read the answers would otherwise
            // have every answer queued in memory: the next one waits until the socket drains.
            guard context.channel.isWritable else {
                parked = (head, body)
                return
            }
            handle(head, body, context: context)
        case .rejectAndClose(let error):
            write(StreamService.errorReply(error))
        }
    }

    private func handle(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        connection.releaseBody()
        let live = LiveRequest()
        self.live = live
        if connection.quiescing { live.cancel() }
        service.handle(StreamRequest(head: head, body: body), live: live, on: context.eventLoop)
            .assumeIsolated().whenSuccess { [self] reply in
                guard self.context != nil else { return }
                self.live = nil
                write(reply)
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseRequest()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            session?.writabilityChanged()
            resumeParked(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func resumeParked(context: ChannelHandlerContext) {
        guard let (head, body) = parked else { return }
        parked = nil
        handle(head, body, context: context)
    }

    /// The server is shutting down: end what is in flight promptly, then close.
    func quiesce() {
        connection.quiescing = true
        live?.cancel()
        session?.stop()
        if connection.isIdle { context?.close(promise: nil) }
    }

    private func releaseRequest() {
        live?.cancel()
        live = nil
        session?.cancel()
        session = nil
    }

    private func write(_ reply: Reply) {
        guard let context else { return }
        switch reply {
        case .response(let head, let body):
            let prepared = connection.finishResponse(head)
            HTTPConnection.write(prepared, body: body, context: context, wrap: wrapOutboundOut)
        case .fileResponse(let head, let body, let files):
            let prepared = connection.finishResponse(head)
            HTTPConnection.write(prepared, parts: body, context: context, wrap: wrapOutboundOut) { files.close() }
        case .sse(let head, let plan):
            let session = SSESession(service: service, plan: plan, loop: context.eventLoop)
            self.session = session
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            session.start(self)
        }
    }
}

extension StreamHTTPHandler: SSEOutput {
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ events: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(events))), promise: nil)
    }

    func finish() {
        session = nil
        guard let context else { return }
        // SSE connections are closed rather than reused: that is what makes readers reconnect
        // to whichever node is in front and lets caches re-collapse them (§10.2).
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }
}
