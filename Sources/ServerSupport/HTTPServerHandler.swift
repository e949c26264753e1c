import NIOCore
import NIOHTTP1

/// The one connection handler of both servers: collects requests with `HTTPConnection`, hands
/// each complete one to the server's `HTTPResponder`, and writes the replies, including
/// streaming SSE ones. Keep-alive, HEAD, pipelining, back-pressure and shutdown live here.
public final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler, QuiescingHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let responder: any HTTPResponder
    private var connection: HTTPConnection
    private var context: ChannelHandlerContext?
    private var live: LiveRequest?
    private var session: (any SSESession)?
    /// SSE bytes written but not yet taken by the socket.
    private var sseBacklog = 0
    /// A send left a backlog: the session hears when it is gone.
    private var sessionAwaitsDrain = false
    /// Inside `send`: writes the socket takes at once complete there, and the session, which
    /// learns the backlog from what `send` returns, must not be re-entered.
    private var sending = false

    /// A complete request held back while earlier responses still wait for a client that is
    /// not reading: it is handled once they drain (see `channelWritabilityChanged`).
    private var parked: ServerRequest?

    public init(responder: any HTTPResponder, bodyBudget: RequestBodyBudget? = nil) {
        self.responder = responder
        self.connection = HTTPConnection(maxBodyBytes: responder.maxBodyBytes, bodyBudget: bodyBudget)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        responder.connectionOpened()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        responder.connectionClosed()
        connection.releaseBody()
        parked = nil
        releaseRequest()
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch connection.read(unwrapInboundIn(data)) {
        case .none:
            break
        case .process(let head, let body):
            // A client that pipelines requests but does not read the answers would otherwise
            // have every answer queued in memory: the next one waits until the socket drains.
            guard context.channel.isWritable else {
                parked = ServerRequest(head: head, body: body)
                return
            }
            handle(ServerRequest(head: head, body: body), context: context)
        case .rejectAndClose(let error):
            write(responder.refusal(error))
        }
    }

    private func handle(_ request: ServerRequest, context: ChannelHandlerContext) {
        connection.releaseBody()
        let live = LiveRequest()
        self.live = live
        if connection.quiescing { live.cancel() }
        responder.respond(to: request, live: live, on: context.eventLoop)
            .assumeIsolated().whenSuccess { [self] reply in
                // A client that left is not answered; one cancelled by shutdown still is.
                guard self.context != nil, !live.isCancelled || connection.quiescing else {
                    Self.discard(reply)
                    return
                }
                self.live = nil
                write(reply)
            }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        releaseRequest()
        context.fireChannelInactive()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let request = parked {
            parked = nil
            handle(request, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The server is shutting down: end what is in flight promptly, then close.
    public func quiesce() {
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

    /// A reply that will not be written still releases what it holds (file ranges).
    private static func discard(_ reply: ServerReply) {
        if case .fileResponse(_, _, let written) = reply { written() }
    }

    private func write(_ reply: ServerReply) {
        guard let context else { return Self.discard(reply) }
        switch reply {
        case .response(let head, let body):
            let prepared = connection.finishResponse(head)
            HTTPConnection.write(prepared, parts: body.lazy.map(IOData.byteBuffer), context: context, wrap: wrapOutboundOut)
        case .fileResponse(let head, let body, let written):
            let prepared = connection.finishResponse(head)
            HTTPConnection.write(prepared, parts: body, context: context, wrap: wrapOutboundOut, written: written)
        case .sse(let head, let start):
            sseBacklog = 0
            sessionAwaitsDrain = false
            let session = start(context.eventLoop)
            self.session = session
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            session.start(self)
            // Shutdown began while this request was being answered: end the stream at once
            // rather than let it run until the grace period closes the connection.
            if connection.quiescing { session.stop() }
        }
    }
}

extension HTTPServerHandler: SSEOutput {
    public var backlog: Int { sseBacklog }

    public func send(_ events: ByteBuffer) -> Int {
        // Gone: report a backlog no session waits out, so none produces more.
        guard let context else { return .max }
        let size = events.readableBytes
        sseBacklog += size
        sending = true
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(events)))).assumeIsolated().whenComplete { [self] _ in
            sseBacklog -= size
            if sseBacklog == 0, sessionAwaitsDrain {
                sessionAwaitsDrain = false
                if !sending { session?.drained() }
            }
        }
        sending = false
        sessionAwaitsDrain = sseBacklog > 0
        return sseBacklog
    }

    public func finish() {
        session = nil
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }
}
