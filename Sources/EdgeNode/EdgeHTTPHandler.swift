import NIOCore
import NIOHTTP1
import ServerSupport

/// The edge's per-connection handler: collects requests with `RequestStateMachine`, hands them
/// to `EdgeService`, writes the replies, and relays SSE responses from upstream as they stream.
final class EdgeHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: EdgeService
    private var machine: RequestStateMachine
    private var context: ChannelHandlerContext?
    private var live: LiveRequest?
    private var relay: UpstreamStream?
    private var relayTimer: Scheduled<Void>?
    private var relayHeadSent = false
    /// Relayed bytes written but not yet taken by the socket.
    private var relayBacklog = 0
    /// A relayed client further behind than this is disconnected.
    private static let relayBacklogLimit = 4 << 20
    private var keepAlive = true
    private var isHeadRequest = false
    private var quiescing = false

    init(service: EdgeService) {
        self.service = service
        self.machine = RequestStateMachine(maxBodyBytes: service.configuration.maxBodyBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        service.metrics.openConnections.increment()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        service.metrics.openConnections.decrement()
        release()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let action: RequestStateMachine.Action
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            isHeadRequest = head.method == .HEAD
            action = machine.receivedHead(head)
        case .body(let body):
            action = machine.receivedBody(body)
        case .end:
            action = machine.receivedEnd()
        }
        switch action {
        case .none:
            break
        case .process(let head, let body):
            let live = LiveRequest()
            self.live = live
            if quiescing { live.cancel() }
            service.handle(EdgeRequest(head: head, body: body), live: live, on: context.eventLoop)
                .assumeIsolated().whenSuccess { [self] reply in
                    guard self.context != nil, !live.isCancelled || quiescing else { return }
                    self.live = nil
                    write(reply)
                }
        case .rejectAndClose(let error):
            keepAlive = false
            write(EdgeService.text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", cache: "PASS"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    /// The server is shutting down: end what is in flight, then close.
    func quiesce() {
        quiescing = true
        live?.cancel()
        endRelay()
        if case .idle = machine.state { context?.close(promise: nil) }
    }

    private func release() {
        live?.cancel()
        live = nil
        relay?.cancel()
        relay = nil
        relayTimer?.cancel()
    }

    private func write(_ reply: EdgeReply) {
        guard let context else { return }
        switch reply {
        case .response(var head, let body):
            let close = !keepAlive || quiescing
            if close { head.headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if !isHeadRequest && body.readableBytes > 0 && head.status != .noContent && head.status != .notModified {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            // Ready for the next request before `.end` goes out: the pipelining handler in
            // front releases a pipelined request as soon as it sees the end of this response.
            machine.responseCompleted()
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
                if close { self.context?.close(promise: nil) }
            }
        case .relay(let upstreamHead):
            relayHeadSent = false
            relayBacklog = 0
            startRelay(upstreamHead, context: context)
        }
    }

    /// Streams an SSE response from upstream to this client, ending it after the edge's own
    /// reconnect interval. A client that cannot keep up is disconnected rather than buffered
    /// without bound; it reconnects from its last offset.
    private func startRelay(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        service.metrics.openSSE.increment()
        relay = service.upstream.stream(
            head, on: context.eventLoop,
            onHead: { head in
                let handler = loopBound.value
                handler.relayHeadSent = true
                var headers = EdgeService.endToEnd(head.headers)
                headers.replaceOrAdd(name: "X-Cache", value: CacheOutcome.pass.rawValue)
                handler.context?.writeAndFlush(handler.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
            },
            onBody: { body in
                let handler = loopBound.value
                guard let context = handler.context else { return }
                guard handler.relayBacklog + body.readableBytes <= Self.relayBacklogLimit else {
                    handler.endRelay()
                    return
                }
                handler.relayBacklog += body.readableBytes
                let size = body.readableBytes
                context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(body)))).assumeIsolated().whenComplete { _ in
                    loopBound.value.relayBacklog -= size
                }
            },
            onEnd: { _ in loopBound.value.endRelay() })
        relayTimer = context.eventLoop.assumeIsolated().scheduleTask(in: service.configuration.sseReconnectInterval) { [weak self] in
            self?.endRelay()
        }
    }

    private func endRelay() {
        guard let relay else { return }
        self.relay = nil
        relay.cancel()
        relayTimer?.cancel()
        service.metrics.openSSE.decrement()
        guard let context else { return }
        if !relayHeadSent {
            // The upstream failed before answering: the client still gets a response.
            relayHeadSent = true
            keepAlive = false
            write(EdgeService.text(.badGateway, "upstream unavailable\n", cache: "PASS"))
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }
}
