import NIOCore
import NIOHTTP1

/// Runs one exchange at a time on an HTTP/1.1 client pipeline (`addHTTPClientHandlers()`, whose
/// decoder knows that responses to HEAD have no body). Loop-confined.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private struct Exchange {
        let target: UpstreamExchangeTarget
        let sequence: Int
        let isSafeMethod: Bool
        let requestKeepAlive: Bool
        let onReusedConnection: Bool
        var head: HTTPResponseHead?
        var body: ByteBuffer?
    }

    /// Told when an exchange ends; `true` if the connection may serve another.
    private let released: @Sendable (Bool) -> Void
    /// The largest body a buffered exchange may take (`nil`: no bound). Streamed exchanges pass
    /// each chunk on and hold none.
    private let maxResponseBytes: Int?
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var sequence = 0
    private var completedExchanges = 0
    private var shuttingDown = false

    init(maxResponseBytes: Int? = nil, released: @escaping @Sendable (Bool) -> Void) {
        self.maxResponseBytes = maxResponseBytes
        self.released = released
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start(_ target: UpstreamExchangeTarget, head: HTTPRequestHead, body: ByteBuffer?) {
        if case .buffered(let request) = target, request.isFinished {
            // It timed out or was cancelled between being handed this connection and now (its
            // abort may have run before this): do not send it, keep the connection.
            released(true)
            return
        }
        guard let context, context.channel.isActive, !shuttingDown, exchange == nil else {
            assert(exchange == nil, "a second exchange on a busy connection")
            // Nothing was sent, so sending it elsewhere is always safe.
            let error =
                shuttingDown
                ? UpstreamError(.shutdown, "upstream client is shut down")
                : UpstreamError(.connectionClosed, "upstream connection closed before the request was sent")
            Self.deliver(.failure(error), to: target, retryable: !shuttingDown)
            released(false)
            self.context?.close(promise: nil)
            return
        }
        sequence += 1
        let sequence = self.sequence
        exchange = Exchange(
            target: target, sequence: sequence,
            isSafeMethod: head.method == .GET || head.method == .HEAD || head.method == .OPTIONS,
            requestKeepAlive: head.isKeepAlive, onReusedConnection: completedExchanges > 0)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenFailure { [self] error in
            guard self.exchange?.sequence == sequence else { return }
            // Socket errors may mean a stale connection; others (invalid headers) would recur.
            fail(
                UpstreamError(.connectionClosed, "cannot send to upstream: \(error)"),
                retryCandidate: error is IOError || error is ChannelError)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard exchange != nil else { return }
            // 1xx informational responses precede the real one.
            if head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols { return }
            exchange!.head = head
            if case .streaming(let core) = exchange!.target {
                core.deliverHead(head)
            } else if let maxResponseBytes, let length = head.headers.first(name: "Content-Length").flatMap(Int.init),
                length > maxResponseBytes
            {
                // Announced too large: refuse before a byte of it is held.
                tooLarge(maxResponseBytes)
            }
        case .body(let buffer):
            guard let target = exchange?.target else { return }
            if case .streaming(let core) = target {
                core.deliverBody(buffer)
            } else if let maxResponseBytes, (exchange!.body?.readableBytes ?? 0) + buffer.readableBytes > maxResponseBytes {
                // Chunked, or longer than announced: stop holding it at the bound.
                tooLarge(maxResponseBytes)
            } else if exchange!.body == nil {
                exchange!.body = buffer
            } else {
                var buffer = buffer
                exchange!.body!.writeBuffer(&buffer)
            }
        case .end:
            guard let finished = exchange else { return }
            exchange = nil
            completedExchanges += 1
            guard let head = finished.head else {
                Self.deliver(.failure(UpstreamError(.connectionClosed, "upstream response without a head")), to: finished.target, retryable: false)
                released(false)
                context.close(promise: nil)
                return
            }
            var reusable = finished.requestKeepAlive && head.isKeepAlive && !shuttingDown
            if case .streaming = finished.target { reusable = false }
            // Back to the pool first, so that whoever sees the response sees the pool settled.
            released(reusable)
            if !reusable { context.close(promise: nil) }
            let response = UpstreamResponse(head: head, body: finished.body ?? ByteBuffer())
            Self.deliver(.success(response), to: finished.target, retryable: false)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamError(.connectionClosed, "upstream closed the connection"), retryCandidate: true)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(
            UpstreamError(.connectionClosed, "upstream connection error: \(error)"),
            retryCandidate: error is IOError || error is ChannelError)
        context.close(promise: nil)
    }

    /// The buffered answer outgrew `maxResponseBytes`: the request fails and the connection,
    /// with the rest of the answer still on it, is closed.
    private func tooLarge(_ limit: Int) {
        fail(UpstreamError(.responseTooLarge, "upstream answer larger than \(limit) bytes"), retryCandidate: false)
    }

    /// A request gave up (timeout, cancellation): if it is the current exchange, drop the
    /// connection; the request has already failed itself.
    func abort(_ target: ObjectIdentifier) {
        guard let current = exchange, current.target.id == target else { return }
        exchange = nil
        released(false)
        context?.close(promise: nil)
    }

    func shutdown() {
        shuttingDown = true
        fail(UpstreamError(.shutdown, "upstream client is shut down"), retryCandidate: false)
        context?.close(promise: nil)
    }

    private func fail(_ error: UpstreamError, retryCandidate: Bool) {
        guard let failed = exchange else { return }
        exchange = nil
        // A reused connection the server closed before answering (it timed out the idle
        // connection, or restarted): sending a safe request again on another is harmless.
        let retryable = retryCandidate && !shuttingDown && failed.onReusedConnection && failed.head == nil && failed.isSafeMethod
        Self.deliver(.failure(error), to: failed.target, retryable: retryable)
        released(false)
        context?.close(promise: nil)
    }

    private static func deliver(_ result: Result<UpstreamResponse, UpstreamError>, to target: UpstreamExchangeTarget, retryable: Bool) {
        switch target {
        case .buffered(let request):
            if case .failure = result, retryable, request.retry() { return }
            request.complete(result)
        case .streaming(let core):
            switch result {
            case .success: core.connectionEnded(nil)
            case .failure(let error): core.connectionEnded(error)
            }
        }
    }
}
