import NIOCore
import NIOHTTP1
import ServerSupport

/// The edge's per-connection handler: collects requests with `RequestStateMachine`, hands them
/// to `EdgeService`, writes the replies, and relays SSE responses from upstream as they stream.
final class EdgeHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, QuiescingHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: EdgeService
    private var connection: HTTPConnection
    private var context: ChannelHandlerContext?
    private var live: LiveRequest?
    private var session: EdgeSSESession?
    /// SSE bytes written but not yet taken by the socket.
    private var sseBacklog = 0

    /// A complete request held back while earlier responses still wait for a client that is
    /// not reading: it is handled once they drain (see `channelWritabilityChanged`).
    private var parked: (head: HTTPRequestHead, body: ByteBuffer)?

    init(service: EdgeService, bodyBudget: RequestBodyBudget? = nil) {
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
        release()
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
            write(EdgeService.text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", cache: "PASS"))
        }
    }

    private func handle(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        connection.releaseBody()
        let live = LiveRequest()
        self.live = live
        if connection.quiescing { live.cancel() }
        service.handle(EdgeRequest(head: head, body: body), live: live, on: context.eventLoop)
            .assumeIsolated().whenSuccess { [self] reply in
                guard self.context != nil, !live.isCancelled || connection.quiescing else { return }
                self.live = nil
                write(reply)
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let (head, body) = parked {
            parked = nil
            handle(head, body, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The server is shutting down: end what is in flight, then close.
    func quiesce() {
        connection.quiescing = true
        live?.cancel()
        session?.stop()
        if connection.isIdle { context?.close(promise: nil) }
    }

    private func release() {
        live?.cancel()
        live = nil
        session?.cancel()
        session = nil
    }

    private func write(_ reply: EdgeReply) {
        guard let context else { return }
        switch reply {
        case .response(let head, let body):
            let prepared = connection.finishResponse(head)
            HTTPConnection.write(prepared, body: [body], context: context, wrap: wrapOutboundOut)
        case .sse(let head, let plan):
            sseBacklog = 0
            let session = EdgeSSESession(service: service, plan: plan, loop: context.eventLoop)
            self.session = session
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            session.start(self)
        }
    }

}

extension EdgeHTTPHandler: EdgeSSEOutput {
    func sendEvents(_ events: ByteBuffer) -> Int {
        guard let context else { return 0 }
        let size = events.readableBytes
        sseBacklog += size
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(events)))).assumeIsolated().whenComplete { [self] _ in
            sseBacklog -= size
        }
        return sseBacklog
    }

    func finishEvents() {
        session = nil
        guard let context else { return }
        // SSE connections are closed rather than reused, so readers reconnect and re-collapse.
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }
}
