import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// An HTTP/2 client for end-to-end tests: one TLS connection that offers only `h2` in ALPN, each
/// request on a stream of its own (NIO's HTTP/2 client pipeline), responses as `TestResponse`.
public final class TestHTTP2Connection: Sendable {
    public let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let alpn: ALPNRecorder.Handle
    private let authority: String

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, alpn: ALPNRecorder.Handle, authority: String) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.alpn = alpn
        self.authority = authority
    }

    /// Connects and completes the TLS handshake; `tls` should offer `h2` (see
    /// `TestCertificateAuthority.clientContext(protocols:)`).
    public static func connect(port: Int, tls: NIOSSLContext, serverName: String = "localhost") async throws -> TestHTTP2Connection {
        let alpn = ALPNRecorder.Handle()
        let multiplexer = NIOLockedValueBox<NIOHTTP2Handler.StreamMultiplexer?>(nil)
        // The whole pipeline is in place before the connection is: the server's first HTTP/2
        // frames can arrive with the end of the TLS handshake.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try sync.addHandler(ALPNRecorder(handle: alpn))
                    let made = try sync.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in stream.eventLoop.makeSucceededVoidFuture() }
                    multiplexer.withLockedValue { $0 = made }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        _ = try await alpn.negotiated.futureResult.get()
        let made = try multiplexer.withLockedValue { try $0.orThrow(TestClientError("no HTTP/2 pipeline")) }
        return TestHTTP2Connection(channel: channel, multiplexer: made, alpn: alpn, authority: "\(serverName):\(port)")
    }

    /// The protocol ALPN chose.
    public func negotiatedProtocol() async throws -> String? {
        try await alpn.negotiated.futureResult.get()
    }

    /// Opens a stream, sends the request on it, and yields its response; `onBody` hears each
    /// body part as it arrives (for SSE). `ends: false` leaves the request unfinished (the
    /// client's side of the stream open).
    public func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, ends: Bool = true,
        onBody: (@Sendable (ByteBuffer) -> Void)? = nil
    ) async throws -> (stream: any Channel, response: EventLoopFuture<TestResponse>) {
        let collector = ResponseCollector.Handle()
        let stream = try await multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .https))
                try stream.pipeline.syncOperations.addHandler(ResponseCollector(handle: collector))
            }
        }.get()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: authority)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body, ends { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count)) }
        let promise = stream.eventLoop.makePromise(of: TestResponse.self)
        collector.enqueue(promise, onBody: onBody)
        stream.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, !body.isEmpty {
            stream.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        guard ends else {
            stream.flush()
            return (stream, promise.futureResult)
        }
        stream.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        return (stream, promise.futureResult)
    }

    /// Sends a request on a new stream and waits for the whole response.
    public func request(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> TestResponse {
        try await send(method, path, headers: headers, body: body).response.get()
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Records what ALPN chose once the TLS handshake completes.
final class ALPNRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    final class Handle: Sendable {
        let negotiated = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: String?.self)
        private let done = NIOLockedValueBox(false)

        func complete(_ result: Result<String?, any Error>) {
            guard done.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            negotiated.completeWith(result)
        }
    }

    private let handle: Handle

    init(handle: Handle) { self.handle = handle }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            handle.complete(.success(negotiated))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handle.complete(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handle.complete(.failure(TestClientError("connection closed before the TLS handshake completed")))
        context.fireChannelInactive()
    }
}

extension TestHTTP2Connection {
    /// An SSE response arriving on one stream: its events in order, as they come.
    public struct EventStream: Sendable {
        public let stream: any Channel
        public let response: EventLoopFuture<TestResponse>
        public let events: AsyncStream<SSEEvent>

        /// The next `count` events, or fewer if the stream ends first.
        public func next(_ count: Int) async -> [SSEEvent] {
            var out: [SSEEvent] = []
            for await event in events {
                out.append(event)
                if out.count == count { break }
            }
            return out
        }
    }

    /// Opens an SSE read on a stream of its own.
    public func openSSE(_ path: String, headers: [(String, String)] = []) async throws -> EventStream {
        let (events, continuation) = AsyncStream.makeStream(of: SSEEvent.self)
        let parser = NIOLockedValueBox(SSEParser())
        let (stream, response) = try await send(.GET, path, headers: headers) { buffer in
            for event in parser.withLockedValue({ $0.feed(buffer) }) { continuation.yield(event) }
        }
        response.whenComplete { _ in continuation.finish() }
        return EventStream(stream: stream, response: response, events: events)
    }
}

extension Optional {
    fileprivate func orThrow(_ error: @autoclosure () -> any Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}
