import EdgeNode
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestSupport

/// A request as the fake upstream received it.
struct FakeRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    /// The request body as text (empty when there was none).
    var body: String = ""

    func header(_ name: String) -> String? { headers.first(name: name) }
    var path: String { String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]) }
    var query: String { uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
    var isConditional: Bool { header("If-None-Match") != nil }
}

/// Holds answers back until the test opens it: ordering without timing.
final class FakeGate: Sendable {
    private let state = NIOLockedValueBox<(open: Bool, waiting: [@Sendable () -> Void])>((false, []))

    init() {}

    /// Runs `action` once the gate is open (now, if it already is).
    func whenOpen(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { state in
            if state.open { return true }
            state.waiting.append(action)
            return false
        }
        if now { action() }
    }

    func open() {
        let waiting = state.withLockedValue { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for action in waiting { action() }
    }
}

/// A canned answer: status, headers, body, and an optional delay or gate before it is sent.
struct FakeResponse: Sendable {
    var status: HTTPResponseStatus = .ok
    var headers: [(String, String)] = []
    var body: String = ""
    var delay: TimeAmount = .zero
    /// When set, the answer waits for the gate to open (after `delay`).
    var gate: FakeGate? = nil
    /// Sent without `Content-Length`, chunked, in pieces of this many bytes (`nil`: one piece
    /// with `Content-Length`).
    var chunkBytes: Int? = nil

    func held(by gate: FakeGate) -> FakeResponse {
        var copy = self
        copy.gate = gate
        return copy
    }

    /// A text/plain read answer with the protocol headers the edge acts on.
    static func read(
        _ body: String, next: Int, upToDate: Bool = true, closed: Bool = false, cacheControl: String, etag: String? = nil,
        extra: [(String, String)] = [], delay: TimeAmount = .zero
    ) -> FakeResponse {
        var headers: [(String, String)] = [
            ("Content-Type", "text/plain"), ("Stream-Next-Offset", offset(next)), ("Cache-Control", cacheControl),
        ]
        if upToDate { headers.append(("Stream-Up-To-Date", "true")) }
        if closed { headers.append(("Stream-Closed", "true")) }
        if let etag { headers.append(("ETag", etag)) }
        headers += extra
        return FakeResponse(status: .ok, headers: headers, body: body, delay: delay)
    }

    /// A 304 for a conditional read.
    static func notModified(etag: String, cacheControl: String, next: Int, delay: TimeAmount = .zero) -> FakeResponse {
        FakeResponse(
            status: .notModified,
            headers: [("ETag", etag), ("Cache-Control", cacheControl), ("Stream-Next-Offset", offset(next)), ("Stream-Up-To-Date", "true")],
            body: "", delay: delay)
    }

    /// The protocol's fixed-width offset for byte position `position`.
    static func offset(_ position: Int) -> String {
        let digits = String(position)
        return "0000000000000000_" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}

/// A tiny HTTP/1.1 server standing in for an origin: answers every request with whatever the
/// responder returns, records every request, and can be stopped and restarted on the same port.
final class FakeUpstream: Sendable {
    typealias Responder = @Sendable (FakeRequest) -> FakeResponse

    private struct State {
        var requests: [FakeRequest] = []
        var responder: Responder
        var channel: (any Channel)?
        var children: [ObjectIdentifier: any Channel] = [:]
        var port: Int = 0
    }

    private let state: NIOLockedValueBox<State>
    /// Set: connections speak TLS with this context before HTTP.
    private let tls: NIOSSLContext?

    private init(responder: @escaping Responder, tls: NIOSSLContext?) {
        state = NIOLockedValueBox(State(responder: responder))
        self.tls = tls
    }

    /// Starts a fake upstream on `port` (by default a free one outside the ephemeral range, so
    /// that `restart()` can take it back).
    static func start(port: Int? = nil, tls: NIOSSLContext? = nil, _ responder: @escaping Responder) async throws -> FakeUpstream {
        let fake = FakeUpstream(responder: responder, tls: tls)
        if let port {
            try await fake.listen(port: port)
        } else {
            try await withPortOutsideEphemeralRange { port in try await fake.listen(port: port) }
        }
        return fake
    }

    /// The port it listens (or last listened) on.
    var port: Int { state.withLockedValue { $0.port } }

    /// Every request received so far, in arrival order.
    var requests: [FakeRequest] { state.withLockedValue { $0.requests } }

    func requests(_ method: HTTPMethod = .GET, path: String? = nil) -> [FakeRequest] {
        requests.filter { $0.method == method && (path == nil || $0.path == path) }
    }

    func setResponder(_ responder: @escaping Responder) {
        state.withLockedValue { $0.responder = responder }
    }

    /// Binds (again) on `port`; after `stop()`, `restart()` binds on the same port.
    func listen(port: Int) async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = self.tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(FakeUpstreamHandler(upstream: self))
                    self.track(channel)
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        state.withLockedValue {
            $0.channel = channel
            $0.port = channel.localAddress!.port!
        }
    }

    func restart() async throws {
        try await listen(port: port)
    }

    /// Stops listening and closes every open connection: the upstream is down.
    func stop() async {
        let (channel, children) = state.withLockedValue { state in
            defer {
                state.channel = nil
                state.children = [:]
            }
            return (state.channel, Array(state.children.values))
        }
        try? await channel?.close()
        for child in children { try? await child.close() }
    }

    private func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.children[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLockedValue { $0.children.removeValue(forKey: key) }
        }
    }

    fileprivate func received(_ request: FakeRequest) -> FakeResponse {
        let responder = state.withLockedValue { state in
            state.requests.append(request)
            return state.responder
        }
        return responder(request)
    }
}

private final class FakeUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstream: FakeUpstream
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(upstream: FakeUpstream) {
        self.upstream = upstream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            self.head = nil
            let response = upstream.received(
                FakeRequest(method: head.method, uri: head.uri, headers: head.headers, body: String(buffer: body)))
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let send: @Sendable () -> Void = {
                bound.eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.write(response, method: head.method, context: context)
                }
            }
            let release: @Sendable () -> Void = {
                if let gate = response.gate { gate.whenOpen(send) } else { send() }
            }
            if response.delay > .zero {
                context.eventLoop.scheduleTask(in: response.delay) { release() }
            } else {
                release()
            }
        }
    }

    private func write(_ response: FakeResponse, method: HTTPMethod, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders(response.headers)
        let hasBody = response.status != .notModified && response.status != .noContent
        if hasBody && response.chunkBytes == nil { headers.replaceOrAdd(name: "Content-Length", value: String(response.body.utf8.count)) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if hasBody && method != .HEAD && !response.body.isEmpty {
            var body = ByteBuffer(string: response.body)
            while let piece = body.readSlice(length: min(response.chunkBytes ?? body.readableBytes, body.readableBytes)), piece.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(piece))), promise: nil)
            }
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// An edge in front of a fake upstream, both on ephemeral ports.
struct FakeTopology {
    let fake: FakeUpstream
    let edge: EdgeServer
    /// The edge's cache clock: it moves only when the test advances it.
    let clock: ManualClock
    var port: Int { edge.port! }

    func request(_ method: HTTPMethod = .GET, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws
        -> TestResponse
    {
        try await TestHTTP.request(port: port, method, path, headers: headers, body: body.map { Array($0.utf8) })
    }

    /// Ages the edge's cache by `amount`, then requests `path`.
    func request(after amount: TimeAmount, _ path: String, headers: [(String, String)] = []) async throws -> TestResponse {
        clock.advance(by: amount)
        return try await request(.GET, path, headers: headers)
    }
}

func withFakeUpstream<T>(
    edge configureEdge: (inout EdgeConfiguration) -> Void = { _ in },
    _ responder: @escaping FakeUpstream.Responder,
    _ body: (FakeTopology) async throws -> T
) async throws -> T {
    let fake = try await FakeUpstream.start(responder)
    var configuration = EdgeConfiguration()
    configuration.port = 0
    configuration.upstreamHost = "127.0.0.1"
    configuration.upstreamPort = fake.port
    // Generous: a stopped fake refuses connections at once, so no test waits for these, and a
    // loaded CI machine must not turn a slow answer into a timeout.
    configuration.upstreamConnectTimeout = .seconds(10)
    configuration.upstreamTimeout = .seconds(60)
    let clock = ManualClock()
    configuration.clock = { clock.now() }
    configureEdge(&configuration)
    let edge = EdgeServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
    try await edge.start()
    let topology = FakeTopology(fake: fake, edge: edge, clock: clock)
    do {
        let result = try await body(topology)
        try await edge.shutdown()
        await fake.stop()
        return result
    } catch {
        try? await edge.shutdown()
        await fake.stop()
        throw error
    }
}
