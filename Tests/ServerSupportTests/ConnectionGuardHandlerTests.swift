import NIOCore
import NIOEmbedded
import NIOHTTP1
import ServerSupport
import Testing

/// The guard on an EmbeddedChannel whose clock the test moves: timers fire exactly when the
/// loop's time passes their deadline, with no waiting.
@Suite("ConnectionGuardHandler")
struct ConnectionGuardHandlerTests {
    /// The same figures as the state machine's tests.
    var limits: ConnectionLimits { ConnectionTimeoutsTests().limits }

    /// Wire handler, guard, and a stand-in for the server's handler that answers every
    /// request with an empty 200 (HTTP parts go straight in, as the decoder would deliver them).
    func makeChannel(answer: Bool = true) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, queuedBytes: { _ in 0 }))
        if answer { try channel.pipeline.syncOperations.addHandler(Answerer()) }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Answers as `HTTPServerHandler` does: the response's bytes, then `ResponseWritten`.
    final class Answerer: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = IOData
        /// Models a client that does not read: the response's flush never completes, as a
        /// socket's would not while its bytes wait (an EmbeddedChannel completes every write).
        let unread: Bool
        private var held: [EventLoopPromise<Void>] = []

        init(unread: Bool = false) {
            self.unread = unread
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            var flushed = context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)))
            if unread {
                let promise = context.eventLoop.makePromise(of: Void.self)
                held.append(promise)
                flushed = promise.futureResult
            }
            context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            for promise in held { promise.fail(ChannelError.ioOnClosedChannel) }
        }
    }

    func request(_ channel: EmbeddedChannel) throws {
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    @Test func idleConnectionIsClosedAtTheIdleTimeout() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func keepAliveIdleRestartsAfterEachResponse() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(50))
        try request(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(50))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(!channel.isActive)
    }

    @Test func slowRequestHeadGets408AndTheConnectionCloses() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionWireHandler())
        try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, queuedBytes: { _ in 0 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // The first bytes of a head that never completes, as the wire handler reports them.
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        try expect408AfterTheHeaderTimeout(channel)
    }

    /// The header timeout (10 s) runs from the first byte: nothing at 9 s, then a 408 that
    /// closes the connection.
    func expect408AfterTheHeaderTimeout(_ channel: EmbeddedChannel) throws {
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let written = try #require(try channel.readOutbound(as: IOData.self))
        guard case .byteBuffer(let bytes) = written else {
            Issue.record("expected bytes")
            return
        }
        #expect(String(buffer: bytes).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(String(buffer: bytes).contains("Connection: close"))
        #expect(!channel.isActive)
    }

    /// A stand-in for a decoder still waiting for the rest of a head: takes bytes, passes
    /// nothing on, events included (so only a direct call can reach the guard).
    final class HeadInProgress: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {}
    }

    @Test func aWireLinkedToItsGuardStartsTheHeaderTimeoutWithoutAnEvent() throws {
        let channel = EmbeddedChannel()
        let wire = ConnectionWireHandler()
        let guardHandler = ConnectionGuardHandler(limits: limits, wire: wire, queuedBytes: { _ in 0 })
        wire.arrivals = guardHandler
        try channel.pipeline.syncOperations.addHandler(wire)
        try channel.pipeline.syncOperations.addHandler(HeadInProgress())
        try channel.pipeline.syncOperations.addHandler(guardHandler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET / HT"))
        try expect408AfterTheHeaderTimeout(channel)
    }

    @Test func stalledBodyIsCut() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionWireHandler())
        try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, queuedBytes: { _ in 0 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(repeating: 1, count: 200)))
        // The rate allows 5 s of grace plus 2 s for 200 bytes at 100 bytes/s, but nothing more
        // arrives: the stall ends it 5 s after the last part.
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aLongAnswerInProgressIsNotCut() throws {
        let channel = try makeChannel(answer: false)
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        // A long-poll or SSE response: the server's own timers end it, not the guard.
        channel.embeddedEventLoop.advanceTime(by: .hours(2))
        #expect(channel.isActive)
    }

    @Test func aClientThatStopsReadingIsCutAfterTheSendTimeout() throws {
        let channel = try makeChannel(answer: false)
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func theWireHandlerReportsArrivingBytesBeforePassingThemOn() throws {
        final class Recorder: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            var seen: [String] = []
            func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
                if event is ConnectionGuardHandler.BytesArrived { seen.append("arrived") }
            }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                seen.append(String(buffer: unwrapInboundIn(data)))
            }
        }
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionWireHandler())
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.writeInbound(ByteBuffer(string: "GET"))
        #expect(recorder.seen == ["arrived", "GET"])
    }

    /// Bytes the test says wait in the channel (an EmbeddedChannel cannot count its own).
    final class Queue: @unchecked Sendable {
        var bytes = 0
    }

    func guardedChannel(queue: Queue, unread: Bool = false) throws -> EmbeddedChannel {
        // No wire handler: without an HTTP encoder the parts would reach it undecoded.
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, queuedBytes: { _ in queue.bytes }))
        try channel.pipeline.syncOperations.addHandler(Answerer(unread: unread))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// A review found that an answer the client does not read, written while the channel was
    /// still writable, left the connection with no deadline at all.
    @Test func unreadOutputUnderTheHighWaterMarkIsCutAfterTheSendTimeout() throws {
        let queue = Queue()
        let channel = try guardedChannel(queue: queue, unread: true)
        queue.bytes = 20_000  // below NIO's high water mark: the channel stays writable
        try request(channel)
        #expect(channel.isWritable)
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    /// A review found that a 408 queued behind unread bytes never went out, so the connection
    /// was never closed: with output pending the guard closes at once instead.
    @Test func aRequestTimeoutBehindUnreadOutputClosesAtOnce() throws {
        let queue = Queue()
        let channel = try guardedChannel(queue: queue)
        queue.bytes = 5_000_000
        try request(channel)
        // One byte of a next request: its header deadline (10 s) comes before the send watch's.
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        while try channel.readOutbound(as: IOData.self) != nil {}
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(!channel.isActive)
        #expect(try channel.readOutbound(as: IOData.self) == nil)  // no 408 behind the rest
    }
}
