import DurableStreams
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import ServerSupport
import TestSupport
import Testing

/// The shared connection handler with a responder the test controls: what it writes, when, and
/// what it tells the responder and the SSE session. No sockets.
@Suite("HTTPServerHandler")
struct HTTPServerHandlerTests {
    /// Answers each request with the next promise the test completes.
    final class ScriptedResponder: HTTPResponder, @unchecked Sendable {
        let lock = NIOLock()
        var pending: [(ServerRequest, LiveRequest, EventLoopPromise<ServerReply>)] = []
        var opened = 0
        var closed = 0
        var refused: [ProtocolError] = []
        var refusalBody = ""

        var maxBodyBytes: Int { 16 }

        /// Set: every request is answered with it at once (`.now`), not kept pending.
        var immediate: ServerReply?

        func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
            if let immediate = lock.withLock({ immediate }) { return .now(immediate) }
            let promise = loop.makePromise(of: ServerReply.self)
            lock.withLock { pending.append((request, live, promise)) }
            return .later(promise.futureResult)
        }

        func refusal(_ error: ProtocolError) -> ServerReply {
            lock.withLock { refused.append(error) }
            return .response(
                HTTPResponseHead(version: .http1_1, status: .init(statusCode: error.status.rawValue)),
                body: refusalBody.isEmpty ? [] : [ByteBuffer(string: refusalBody)])
        }

        func connectionOpened() { lock.withLock { opened += 1 } }
        func connectionClosed() { lock.withLock { closed += 1 } }

        func next() -> (ServerRequest, LiveRequest, EventLoopPromise<ServerReply>) {
            lock.withLock { pending.removeFirst() }
        }
    }

    /// Records what the handler asks of it.
    final class RecordingSession: SSESession, @unchecked Sendable {
        var output: (any SSEOutput)?
        var events: [String] = []
        var stopped = false
        var cancelled = false

        func start(_ output: any SSEOutput) {
            self.output = output
            events.append("start")
        }
        func drained() { events.append("drained") }
        func stop() {
            stopped = true
            output?.finish()
        }
        func cancel() { cancelled = true }
    }

    func makeChannel(_ responder: ScriptedResponder) throws -> (EmbeddedChannel, HTTPServerHandler) {
        let channel = EmbeddedChannel()
        let handler = HTTPServerHandler(responder: responder)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(channel.isActive)
        return (channel, handler)
    }

    func send(_ channel: EmbeddedChannel, _ method: HTTPMethod = .GET, body: String? = nil, keepAlive: Bool = true) throws {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/x", headers: ["Host": "h"])
        if !keepAlive { head.headers.add(name: "Connection", value: "close") }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    func parts(_ channel: EmbeddedChannel, headRequests: Int = 0) throws -> [HTTPClientResponsePart] {
        try WrittenResponses.parts(channel, headRequests: headRequests)
    }

    static func ok(_ text: String) -> ServerReply {
        .response(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": String(text.utf8.count)]),
                  body: [ByteBuffer(string: text)])
    }

    @Test func aReplyIsWrittenAsHeadBodyEndAndTheConnectionIsCounted() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        #expect(responder.opened == 1)
        try send(channel, .POST, body: "hello")
        let (request, _, promise) = responder.next()
        #expect(String(buffer: request.body) == "hello")
        promise.succeed(Self.ok("world"))
        let written = try parts(channel)
        #expect(written.count == 3)
        guard case .head(let head) = written[0], case .body(let body) = written[1], case .end = written[2] else {
            Issue.record("unexpected parts \(written)")
            return
        }
        #expect(head.status == .ok)
        #expect(String(buffer: body) == "world")
        #expect(channel.isActive)
        _ = try channel.finish()
        #expect(responder.closed == 1)
    }

    @Test func aReplyAtHandIsWrittenBeforeTheRequestsEndReturns() throws {
        let responder = ScriptedResponder()
        responder.immediate = Self.ok("now")
        let (channel, _) = try makeChannel(responder)
        try send(channel)
        try send(channel)
        // Both answered within their own `writeInbound`: no future, no pending request.
        #expect(responder.pending.isEmpty)
        let written = try parts(channel)
        #expect(written.count == 6)
        guard case .head(let head) = written[3], case .body(let body) = written[4], case .end = written[5] else {
            Issue.record("unexpected parts \(written)")
            return
        }
        #expect(head.status == .ok)
        #expect(String(buffer: body) == "now")
        #expect(channel.isActive)
    }

    @Test func headGetsNoBody() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try send(channel, .HEAD)
        responder.next().2.succeed(Self.ok("world"))
        let text = String(buffer: try WrittenResponses.bytes(channel))
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Length: 5\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))  // the head, and not a byte of the body
        #expect(channel.isActive)
    }

    @Test func connectionCloseIsHonouredAfterTheResponse() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try send(channel, keepAlive: false)
        responder.next().2.succeed(Self.ok("bye"))
        let written = try parts(channel)
        if case .head(let head) = written.first { #expect(head.headers.first(name: "Connection") == "close") }
        #expect(!channel.isActive)
    }

    @Test func aMalformedRequestIsAnswered400ThroughTheResponderAndTheConnectionCloses() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidVersion)
        #expect(responder.refused.map(\.status.rawValue) == [400])
        if case .head(let written) = try parts(channel).first { #expect(written.status == .badRequest) } else { Issue.record("no answer") }
        #expect(!channel.isActive)
    }

    /// A review found the 400 after a HEAD request went out without its body (the connection
    /// still thought it answered HEAD), so the client read a truncated response.
    @Test func aMalformedRequestAfterAHeadRequestGetsA400WithItsBody() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try send(channel, .HEAD)
        responder.next().2.succeed(Self.ok("world"))
        _ = try WrittenResponses.bytes(channel)
        responder.refusalBody = "malformed"
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidVersion)
        let text = String(buffer: try WrittenResponses.bytes(channel))
        #expect(text.hasPrefix("HTTP/1.1 400"))
        #expect(text.hasSuffix("\r\n\r\nmalformed"))
    }

    /// NIO's decoder stops parsing after a request to switch protocols or tunnel, and would
    /// buffer what follows: such a connection closes after its answer.
    @Test(arguments: [
        (HTTPMethod.GET, ["Connection": "Upgrade", "Upgrade": "websocket"]),
        (HTTPMethod.GET, ["Connection": "keep-alive, upgrade", "Upgrade": "h2c"]),
        (HTTPMethod.CONNECT, [:]),
    ])
    func aRequestToLeaveHTTPClosesTheConnectionAfterItsAnswer(method: HTTPMethod, headers: [String: String]) throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/x", headers: ["Host": "h"])
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        responder.next().2.succeed(Self.ok("no"))
        #expect(String(buffer: try WrittenResponses.bytes(channel)).contains("Connection: close\r\n"))
        #expect(!channel.isActive)
    }

    @Test func anOrdinaryUpgradeHeaderAloneKeepsTheConnection() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x", headers: ["Host": "h"])
        head.headers.add(name: "Upgrade", value: "h2c")  // not named by Connection: not a request to switch
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        responder.next().2.succeed(Self.ok("yes"))
        #expect(channel.isActive)
    }

    /// RFC 9112 §9.3: an HTTP/1.0 connection stays open only when the response says so; and an
    /// HTTP/1.0 client cannot read chunked framing, so its SSE body ends with the connection.
    @Test func anHTTP10ClientIsToldKeepAliveAndGetsItsEventStreamUnchunked() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        let head = HTTPRequestHead(version: .http1_0, method: .GET, uri: "/x", headers: ["Connection": "keep-alive"])
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        responder.next().2.succeed(Self.ok("one"))
        #expect(String(buffer: try WrittenResponses.bytes(channel)).contains("Connection: keep-alive\r\n"))
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        var extra = ExtraHeaderLines()
        extra.add(name: "X-Cache", value: "HIT")
        responder.next().2.succeed(.encoded(EncodedResponse(HTTPResponseHead(version: .http1_1, status: .ok), body: ByteBuffer(string: "two")), extra: extra))
        #expect(String(buffer: try WrittenResponses.bytes(channel))
            == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Cache: HIT\r\nConnection: keep-alive\r\n\r\ntwo")
        #expect(channel.isActive)
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        let session = RecordingSession()
        responder.next().2.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { _ in session }))
        _ = session.output?.send(ByteBuffer(string: "data: x\n\n"))
        handler.quiesce()
        #expect(String(buffer: try WrittenResponses.bytes(channel)) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata: x\n\n")
        #expect(!channel.isActive)
    }

    @Test func aResponseWithoutLengthGetsOneAndAnSSEResponseIsChunked() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        try send(channel)
        responder.next().2.succeed(.response(HTTPResponseHead(version: .http1_1, status: .ok), body: [ByteBuffer(string: "abc"), ByteBuffer(string: "de")]))
        #expect(String(buffer: try WrittenResponses.bytes(channel)) == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde")
        try send(channel)
        let session = RecordingSession()
        responder.next().2.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { _ in session }))
        _ = session.output?.send(ByteBuffer(string: "data: x\n\n"))
        handler.quiesce()
        #expect(String(buffer: try WrittenResponses.bytes(channel))
            == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n0\r\n\r\n")
    }

    @Test func aRequestBehindAClosingResponseIsNotActedOn() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try channel.pipeline.syncOperations.addHandler(HTTPPipeliningHandler(), position: .first)
        try send(channel, keepAlive: false)
        try send(channel, .POST, body: "late")
        responder.next().2.succeed(Self.ok("bye"))
        #expect(responder.pending.isEmpty)  // the POST behind the close never reached the responder
        #expect(!channel.isActive)
    }

    @Test func anEncodedReplyIsItsSharedBytesPlusTheRequestsOwnLines() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        let shared = EncodedResponse(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["ETag": "\"e\""]), body: ByteBuffer(string: "data"))
        var extra = ExtraHeaderLines()
        extra.add(name: "X-Cache", value: "HIT")
        try send(channel)
        responder.next().2.succeed(.encoded(shared, extra: extra))
        #expect(String(buffer: try WrittenResponses.bytes(channel))
            == "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 4\r\nX-Cache: HIT\r\n\r\ndata")
        // HEAD: the same head, no body.
        try send(channel, .HEAD)
        responder.next().2.succeed(.encoded(shared, extra: extra))
        #expect(String(buffer: try WrittenResponses.bytes(channel))
            == "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 4\r\nX-Cache: HIT\r\n\r\n")
        // A connection that ends says so.
        try send(channel, keepAlive: false)
        responder.next().2.succeed(.encoded(shared, extra: extra))
        #expect(String(buffer: try WrittenResponses.bytes(channel))
            == "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 4\r\nX-Cache: HIT\r\nConnection: close\r\n\r\ndata")
        #expect(!channel.isActive)
    }

    @Test func aBodyOverTheLimitIsRefusedThroughTheResponder() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x", headers: ["Host": "h"])
        head.headers.add(name: "Content-Length", value: "100")
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        #expect(responder.refused.map(\.status.rawValue) == [413])
        #expect(responder.pending.isEmpty)
        if case .head(let written) = try parts(channel).first { #expect(written.status == .payloadTooLarge) }
        #expect(!channel.isActive)
    }

    @Test func aClientThatLeavesCancelsItsRequestAndIsNotAnswered() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try send(channel)
        let (_, live, promise) = responder.next()
        channel.pipeline.fireChannelInactive()
        #expect(live.isCancelled)
        promise.succeed(Self.ok("late"))
        #expect(try parts(channel).isEmpty)
    }

    @Test func shutdownCancelsTheRequestButStillAnswersItAndCloses() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        try send(channel)
        let (_, live, promise) = responder.next()
        handler.quiesce()
        #expect(live.isCancelled)
        promise.succeed(Self.ok("last"))
        let written = try parts(channel)
        if case .head(let head) = written.first { #expect(head.headers.first(name: "Connection") == "close") }
        #expect(written.count == 3)
        #expect(!channel.isActive)
    }

    /// An HTTP/2 stream opened while its connection winds down (before the final GOAWAY) is
    /// not closed before its request arrives, and that request is cancelled as shutdown's are.
    @Test func aStreamOpenedDuringShutdownAnswersItsRequestPromptly() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        handler.startQuiescing()
        #expect(channel.isActive)
        try send(channel)
        let (_, live, promise) = responder.next()
        #expect(live.isCancelled)
        promise.succeed(Self.ok("last"))
        #expect(try parts(channel).count == 3)
    }

    @Test func anIdleConnectionClosesAtOnceOnShutdown() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        handler.quiesce()
        #expect(!channel.isActive)
    }

    @Test func anSSEReplyStartsItsSessionOnTheLoopAndFinishingClosesTheConnection() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        try send(channel)
        let session = RecordingSession()
        let madeOnLoop = NIOLockedValueBox(false)
        responder.next().2.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { loop in
            madeOnLoop.withLockedValue { $0 = loop.inEventLoop }
            return session
        }))
        #expect(madeOnLoop.withLockedValue { $0 })
        #expect(session.events == ["start"])
        // The embedded channel takes every write at once: nothing is left waiting.
        #expect(session.output?.send(ByteBuffer(string: "event: data\n\n")) == 0)
        #expect(session.output?.backlog == 0)
        handler.quiesce()
        #expect(session.stopped)
        let written = try parts(channel)
        #expect(written.count == 3)
        if case .body(let events) = written[1] { #expect(String(buffer: events) == "event: data\n\n") }
        #expect(!channel.isActive)
        // Written at once, so the session learned the backlog from `send` and is not re-entered.
        #expect(session.events == ["start"])
    }

    @Test func aClientLeavingMidStreamCancelsTheSession() throws {
        let responder = ScriptedResponder()
        let (channel, _) = try makeChannel(responder)
        try send(channel)
        let session = RecordingSession()
        responder.next().2.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { _ in session }))
        channel.pipeline.fireChannelInactive()
        #expect(session.cancelled)
    }

    @Test func anSSEReplyArrivingDuringShutdownEndsAtOnce() throws {
        let responder = ScriptedResponder()
        let (channel, handler) = try makeChannel(responder)
        try send(channel)
        let promise = responder.next().2
        handler.quiesce()
        let session = RecordingSession()
        promise.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { _ in session }))
        #expect(session.events == ["start"])
        #expect(session.stopped)
        #expect(!channel.isActive)
    }

    /// Holds every write until told to let them through: a client whose socket takes nothing.
    final class HoldingHandler: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = NIOAny
        private var held: [(NIOAny, EventLoopPromise<Void>?)] = []
        var holding = true

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if holding { held.append((data, promise)) } else { context.write(data, promise: promise) }
        }

        func flush(context: ChannelHandlerContext) {
            if !holding { context.flush() }
        }

        func release(context: ChannelHandlerContext) {
            holding = false
            let writes = held
            held = []
            for (data, promise) in writes { context.write(data, promise: promise) }
            context.flush()
        }
    }

    /// Back-pressure: a send the socket does not take returns its bytes as backlog, the session
    /// is not told anything during `send`, and it hears `drained` once, when all of it has gone.
    @Test func aBacklogIsReportedAndItsDrainingIsToldOnce() throws {
        let responder = ScriptedResponder()
        let channel = EmbeddedChannel()
        let holding = HoldingHandler()
        try channel.pipeline.syncOperations.addHandler(holding)
        let handler = HTTPServerHandler(responder: responder)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try send(channel)
        let session = RecordingSession()
        responder.next().2.succeed(.sse(HTTPResponseHead(version: .http1_1, status: .ok), start: { _ in session }))
        let output = try #require(session.output)
        #expect(output.send(ByteBuffer(string: "one")) == 3)
        #expect(output.send(ByteBuffer(string: "two!")) == 7)
        #expect(output.backlog == 7)
        #expect(session.events == ["start"])
        let context = try channel.pipeline.syncOperations.context(handler: holding)
        holding.release(context: context)
        #expect(output.backlog == 0)
        #expect(session.events == ["start", "drained"])
        // Taken at once now: nothing waits, so nothing more is told.
        #expect(output.send(ByteBuffer(string: "three")) == 0)
        #expect(session.events == ["start", "drained"])
    }
}
