import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives what happens on one client connection. Readers and writers implement it; every call
/// arrives on the connection's event loop, which is the only place they are touched.
protocol ClientConnectionDelegate: AnyObject, Sendable {
    func received(head: HTTPResponseHead)
    func received(body: ByteBuffer)
    func receivedEnd()
    func connectionClosed()
}

/// Hands response parts to the delegate; the last handler of a client pipeline.
final class ResponseForwarder: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let delegate: ClientConnectionDelegate

    init(delegate: ClientConnectionDelegate) {
        self.delegate = delegate
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): delegate.received(head: head)
        case .body(let body): delegate.received(body: body)
        case .end: delegate.receivedEnd()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        delegate.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A broken response or reset connection: close, and the delegate hears it once, from
        // channelInactive.
        context.close(promise: nil)
    }
}

/// Opens client connections and writes requests on them.
enum ClientConnection {
    static func connect(to target: Target, on loop: EventLoop, delegate: ClientConnectionDelegate) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseForwarder(delegate: delegate))
                }
            }
            .connect(host: target.host, port: target.port)
    }

    /// Writes one request (keep-alive) and flushes it.
    static func send(
        _ channel: Channel, method: HTTPMethod = .GET, target: Target, uri: String,
        headers extra: [(String, String)] = [], body: ByteBuffer? = nil
    ) {
        var headers = HTTPHeaders([("Host", target.hostHeader)])
        headers.add(contentsOf: extra)
        if let body { headers.add(name: "Content-Length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }
}

/// The current time for latency arithmetic: monotonic nanoseconds.
@inline(__always)
func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
