import NIOCore
import NIOEmbedded
import NIOHTTP1
import ServerSupport
import Testing

/// HTTP/1.1 pipelining: requests sent before earlier answers arrive are answered in order, one
/// at a time, and the socket is not read while a request waits.
@Suite("Pipelining")
struct PipeliningTests {
    static let head = HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))
    static let end = HTTPServerRequestPart.end(nil)

    @Test func partsPassUntilARequestEndsThenWaitForItsResponse() {
        var machine = PipeliningStateMachine()
        #expect(machine.received(.part(Self.head)) != nil)
        let readAtOnce = machine.readRequested()
        #expect(readAtOnce)
        #expect(machine.received(.part(Self.end)) != nil)
        #expect(machine.responding)
        // The next request arrives before the answer: held, and the socket is left alone.
        #expect(machine.received(.part(Self.head)) == nil)
        #expect(machine.received(.part(Self.end)) == nil)
        #expect(machine.received(.part(Self.head)) == nil)
        let readWhileHeld = machine.readRequested()
        #expect(!readWhileHeld)
        #expect(machine.heldCount == 3)
        // Answered: the next complete request goes on, the third's head stays.
        let (release, read) = machine.responseWritten()
        #expect(release.count == 2)
        #expect(!read)
        #expect(machine.heldCount == 1)
        let (rest, readNow) = machine.responseWritten()
        #expect(rest.count == 1)
        #expect(readNow)  // asked for while held; nothing waits any more
        #expect(!machine.responding)
    }

    @Test func aDecodingFailureWaitsItsTurn() {
        var machine = PipeliningStateMachine()
        _ = machine.received(.part(Self.head))
        _ = machine.received(.part(Self.end))
        #expect(machine.received(.failure(.invalidVersion)) == nil)
        let (release, _) = machine.responseWritten()
        guard case .failure? = release.first else {
            Issue.record("the failure was not released: \(release)")
            return
        }
        #expect(machine.responding)  // its 400 is owed now
    }

    /// Records what reaches the server side and answers on demand, as `HTTPServerHandler` does.
    final class Server: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = IOData
        var seen: [String] = []
        var context: ChannelHandlerContext?
        var answerAtOnce = false
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): seen.append("head \(head.uri)")
            case .body: seen.append("body")
            case .end:
                seen.append("end")
                if answerAtOnce { answer() }
            }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { seen.append("error") }
        func answer() {
            guard let context else { return }
            seen.append("answer")
            let flushed = context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: "x"))))
            context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
        }
    }

    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    func request(_ uri: String) -> [HTTPServerRequestPart] {
        [.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)), .end(nil)]
    }

    @Test func theHandlerReleasesHeldRequestsInOrderAsResponsesAreWritten() throws {
        let counter = ReadCounter()
        let server = Server()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(HTTPPipeliningHandler())
        try channel.pipeline.syncOperations.addHandler(server)
        for part in request("/1") + request("/2") + request("/3") { try channel.writeInbound(part) }
        #expect(server.seen == ["head /1", "end"])
        let readsBefore = counter.reads
        channel.read()
        #expect(counter.reads == readsBefore)  // held requests: the socket is not read
        // The third request's answer comes at once when it is released, inside the release
        // of the second: order is kept.
        server.answer()
        #expect(server.seen == ["head /1", "end", "answer", "head /2", "end"])
        server.answerAtOnce = true
        server.answer()
        #expect(server.seen == ["head /1", "end", "answer", "head /2", "end", "answer", "head /3", "end", "answer"])
        #expect(counter.reads == readsBefore + 1)  // the read asked for while held, once
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aDecodingFailureBehindAnOpenRequestIsDeliveredAfterItsAnswer() throws {
        let server = Server()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPPipeliningHandler())
        try channel.pipeline.syncOperations.addHandler(server)
        for part in request("/1") { try channel.writeInbound(part) }
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidVersion)
        #expect(server.seen == ["head /1", "end"])
        server.answer()
        #expect(server.seen == ["head /1", "end", "answer", "error"])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
