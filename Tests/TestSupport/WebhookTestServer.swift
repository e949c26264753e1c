import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A webhook receiver for tests: an HTTP/1.1 server on 127.0.0.1 (port 0), over TLS when given
/// a context, that counts connections, records each request whole, and answers the n-th request
/// (from 0) with `replies(n)` (or, with `nil`, never answers).
public final class WebhookTestServer: Sendable {
    public struct Received: Sendable {
        public var method: HTTPMethod
        public var uri: String
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    public struct Reply: Sendable {
        public var status: HTTPResponseStatus
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(_ status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8] = []) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    private struct State {
        var received: [Received] = []
        var connections = 0
        var channel: (any Channel)?
    }

    private let state = NIOLockedValueBox(State())
    private let replies: @Sendable (Int) -> Reply?
    public let port: Int

    private init(replies: @escaping @Sendable (Int) -> Reply?, port: Int) {
        self.replies = replies
        self.port = port
    }

    /// Answers every request with `reply` (`nil`: never answers).
    public static func start(tls: NIOSSLContext? = nil, reply: Reply?) async throws -> WebhookTestServer {
        try await start(tls: tls, replies: { _ in reply })
    }

    public static func start(tls: NIOSSLContext? = nil, replies: @escaping @Sendable (Int) -> Reply?) async throws -> WebhookTestServer {
        // The port is known only once bound, and the handlers need the server: a holder bridges.
        let holder = NIOLockedValueBox<WebhookTestServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let server = holder.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    server.state.withLockedValue { $0.connections += 1 }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = WebhookTestServer(replies: replies, port: channel.localAddress!.port!)
        server.state.withLockedValue { $0.channel = channel }
        holder.withLockedValue { $0 = server }
        return server
    }

    public var received: [Received] { state.withLockedValue { $0.received } }
    public var connections: Int { state.withLockedValue { $0.connections } }

    /// The first `count` requests, once they have arrived (polled, bounded at about 30 s).
    public func requests(_ count: Int) async throws -> [Received] {
        for _ in 0..<6_000 {
            let received = self.received
            if received.count >= count { return Array(received.prefix(count)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestClientError("the webhook receiver got \(received.count) of \(count) requests")
    }

    public func stop() async {
        let channel = state.withLockedValue { $0.channel }
        try? await channel?.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let server: WebhookTestServer
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(server: WebhookTestServer) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let part):
                body.append(contentsOf: part.readableBytesView)
            case .end:
                guard let head else { return }
                let index = server.state.withLockedValue {
                    $0.received.append(Received(method: head.method, uri: head.uri, headers: head.headers, body: body))
                    return $0.received.count - 1
                }
                guard let reply = server.replies(index) else { return }
                var headers = HTTPHeaders(reply.headers)
                headers.replaceOrAdd(name: "Content-Length", value: String(reply.body.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A client that gave up (TLS refusal, timeout): nothing to answer.
            context.close(promise: nil)
        }
    }
}
