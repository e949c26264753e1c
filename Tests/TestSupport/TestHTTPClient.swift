import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response as a test sees it.
public struct TestResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public func header(_ name: String) -> String? { headers.first(name: name) }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

public struct TestClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A small HTTP/1.1 client for end-to-end tests: one real TCP connection, requests answered in
/// order, optional pipelining, and streaming bodies for SSE.
public final class TestConnection: Sendable {
    public let channel: any Channel
    private let collector: ResponseCollector.Handle
    public let host: String
    public let port: Int

    private init(channel: any Channel, collector: ResponseCollector.Handle, host: String, port: Int) {
        self.channel = channel
        self.collector = collector
        self.host = host
        self.port = port
    }

    /// Opens a connection to `host:port`, over TLS when `tls` is given (checking the server's
    /// certificate for `serverName`).
    public static func connect(
        host: String = "127.0.0.1", port: Int, tls: NIOSSLContext? = nil, serverName: String? = "localhost"
    ) async throws -> TestConnection {
        let collector = ResponseCollector.Handle()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(handle: collector))
                }
            }
            .connect(host: host, port: port).get()
        return TestConnection(channel: channel, collector: collector, host: host, port: port)
    }

    /// Sends a request without waiting; the returned task yields its response. Requests sent
    /// back to back on one connection are pipelined.
    public func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        onBody: (@Sendable (ByteBuffer) -> Void)? = nil
    ) -> EventLoopFuture<TestResponse> {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body, !head.headers.contains(name: "Transfer-Encoding") {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        } else if body == nil && (method == .POST || method == .PUT) {
            head.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        let promise = channel.eventLoop.makePromise(of: TestResponse.self)
        collector.enqueue(promise, onBody: onBody)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        return promise.futureResult
    }

    /// How long `request` waits for a response before it closes the connection and fails: far
    /// beyond any answer the servers give (their longest waits are tens of seconds), so it only
    /// turns a lost response into a failure that names the request instead of a hung test run.
    public static let responseBound: TimeAmount = .seconds(150)

    /// Sends a request and waits for the whole response (at most `responseBound`).
    public func request(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> TestResponse {
        let expired = NIOLockedValueBox(false)
        let channel = self.channel
        let bound = channel.eventLoop.scheduleTask(in: Self.responseBound) {
            expired.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { bound.cancel() }
        do {
            return try await send(method, path, headers: headers, body: body).get()
        } catch where expired.withLockedValue({ $0 }) {
            throw TestClientError("no response to \(method) \(path) on port \(port) within \(Self.responseBound.nanoseconds / 1_000_000_000) s")
        }
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Completes queued response promises in order.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    final class Handle: Sendable {
        struct Pending {
            var promise: EventLoopPromise<TestResponse>
            var onBody: (@Sendable (ByteBuffer) -> Void)?
        }
        let queue = NIOLockedValueBox<[Pending]>([])
        func enqueue(_ promise: EventLoopPromise<TestResponse>, onBody: (@Sendable (ByteBuffer) -> Void)?) {
            queue.withLockedValue { $0.append(Pending(promise: promise, onBody: onBody)) }
        }
        func first() -> Pending? { queue.withLockedValue { $0.first } }
        func removeFirst() -> Pending? { queue.withLockedValue { $0.isEmpty ? nil : $0.removeFirst() } }
        func drain() -> [Pending] { queue.withLockedValue { queue in defer { queue = [] }; return queue } }
    }

    private let handle: Handle
    private var current: TestResponse?

    init(handle: Handle) { self.handle = handle }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            current = TestResponse(status: Int(head.status.code), headers: head.headers, body: [])
        case .body(let buffer):
            current?.body.append(contentsOf: buffer.readableBytesView)
            handle.first()?.onBody?(buffer)
        case .end:
            if let response = current, let pending = handle.removeFirst() {
                pending.promise.succeed(response)
            }
            current = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for pending in handle.drain() {
            if let response = current {
                // A response cut short by the server closing (SSE ends this way too).
                pending.promise.succeed(response)
                current = nil
            } else {
                pending.promise.fail(TestClientError("connection closed before a response"))
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A streaming response cut off by either side still has its head: hand it over.
        if let response = current, let pending = handle.removeFirst() {
            pending.promise.succeed(response)
            current = nil
        }
        for pending in handle.drain() { pending.promise.fail(error) }
        context.close(promise: nil)
    }
}

/// One-shot helpers.
public enum TestHTTP {
    /// Opens a connection, sends one request, returns the response and closes.
    public static func request(
        port: Int, _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> TestResponse {
        let connection = try await TestConnection.connect(port: port)
        defer { Task { await connection.close() } }
        return try await connection.request(method, path, headers: headers, body: body)
    }

    /// Writes raw bytes to a fresh connection and returns everything the server sends back
    /// until it closes the connection (or `timeout` passes, then the connection is closed).
    public static func raw(port: Int, _ bytes: [UInt8], timeout: TimeAmount = .seconds(5)) async throws -> [UInt8] {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawCollector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        let guardTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        try await channel.closeFuture.get()
        guardTask.cancel()
        return received.withLockedValue { $0 }
    }
}

/// Keeps every byte a raw client connection receives in `received`; closes on an error.
public final class RawCollector: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<[UInt8]>
    public init(received: NIOLockedValueBox<[UInt8]>) { self.received = received }
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
    }
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
