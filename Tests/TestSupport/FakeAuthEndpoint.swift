import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A forward-auth endpoint for tests: a tiny HTTP/1.1 server on an ephemeral port that records
/// every request and answers each with what `decide` says, or holds the answers back until
/// `release()` (ordering without timing).
public final class FakeAuthEndpoint: Sendable {
    /// A request as the endpoint received it.
    public struct Seen: Sendable {
        public var method: HTTPMethod
        public var uri: String
        public var headers: HTTPHeaders
        public func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// An answer: a status and headers, with a short body (which the origin should not need).
    public struct Answer: Sendable {
        public var status: HTTPResponseStatus
        public var headers: [(String, String)]
        public init(_ status: HTTPResponseStatus, headers: [(String, String)] = []) {
            self.status = status
            self.headers = headers
        }
    }

    private struct State {
        var seen: [Seen] = []
        var holding = false
        var held: [@Sendable () -> Void] = []
        var channel: (any Channel)?
        var port = 0
    }

    private let state = NIOLockedValueBox(State())
    private let decide: @Sendable (Seen) -> Answer

    private init(decide: @escaping @Sendable (Seen) -> Answer) {
        self.decide = decide
    }

    /// Starts an endpoint on a free port; `decide` answers each request.
    public static func start(_ decide: @escaping @Sendable (Seen) -> Answer) async throws -> FakeAuthEndpoint {
        let endpoint = FakeAuthEndpoint(decide: decide)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(endpoint: endpoint))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        endpoint.state.withLockedValue {
            $0.channel = channel
            $0.port = channel.localAddress!.port!
        }
        return endpoint
    }

    /// The port it listens (or listened) on.
    public var port: Int { state.withLockedValue { $0.port } }

    /// `http://127.0.0.1:<port><path>`.
    public func url(_ path: String = "/auth") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request received so far, in arrival order.
    public var seen: [Seen] { state.withLockedValue { $0.seen } }
    public var hits: Int { state.withLockedValue { $0.seen.count } }

    /// From now on answers wait until `release()`.
    public func hold() { state.withLockedValue { $0.holding = true } }

    /// Sends every held answer, and answers at once from now on.
    public func release() {
        let held = state.withLockedValue { state in
            state.holding = false
            defer { state.held = [] }
            return state.held
        }
        for send in held { send() }
    }

    /// Stops listening (connections to its port are then refused) and sends any held answers.
    public func stop() async {
        let channel = state.withLockedValue { $0.channel }
        try? await channel?.close()
        release()
    }

    /// Runs `body` with an endpoint started for it, and stops the endpoint after.
    public static func with<T>(
        _ decide: @escaping @Sendable (Seen) -> Answer, _ body: (FakeAuthEndpoint) async throws -> T
    ) async throws -> T {
        let endpoint = try await start(decide)
        do {
            let result = try await body(endpoint)
            await endpoint.stop()
            return result
        } catch {
            await endpoint.stop()
            throw error
        }
    }

    fileprivate func received(_ seen: Seen, send: @escaping @Sendable (Answer) -> Void) {
        let answer = decide(seen)
        let now = state.withLockedValue { state in
            state.seen.append(seen)
            if state.holding { state.held.append { send(answer) } }
            return !state.holding
        }
        if now { send(answer) }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let endpoint: FakeAuthEndpoint
        private var head: HTTPRequestHead?

        init(endpoint: FakeAuthEndpoint) {
            self.endpoint = endpoint
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                endpoint.received(Seen(method: head.method, uri: head.uri, headers: head.headers)) { answer in
                    bound.eventLoop.execute {
                        let (handler, context) = bound.value
                        handler.write(answer, context: context)
                    }
                }
            }
        }

        private func write(_ answer: Answer, context: ChannelHandlerContext) {
            guard context.channel.isActive else { return }
            let body = ByteBuffer(string: "\(answer.status.code)\n")
            var headers = HTTPHeaders(answer.headers)
            headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
