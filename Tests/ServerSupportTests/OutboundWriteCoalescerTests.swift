import NIOCore
import NIOEmbedded
import ServerSupport
import Testing

/// The writes between two flushes leave as one buffer (one TLS record), in order, with every
/// promise completed; large writes are not copied.
@Suite struct OutboundWriteCoalescerTests {
    private func written(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { Issue.record("a file region"); continue }
            out.append(String(buffer: buffer))
        }
        return out
    }

    @Test func smallWritesBetweenFlushesLeaveAsOne() throws {
        let channel = EmbeddedChannel(handler: OutboundWriteCoalescer(limit: 64))
        var completed = 0
        for part in ["HTTP/1.1 200 OK\r\n", "Age: 1\r\n\r\n", "body"] {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed += 1 }
            channel.write(IOData.byteBuffer(ByteBuffer(string: part)), promise: promise)
        }
        #expect(try written(channel).isEmpty)
        channel.flush()
        #expect(try written(channel) == ["HTTP/1.1 200 OK\r\nAge: 1\r\n\r\nbody"])
        #expect(completed == 3)
        #expect(try channel.finish().isClean)
    }

    @Test func largeWritesPassThroughInOrder() throws {
        let channel = EmbeddedChannel(handler: OutboundWriteCoalescer(limit: 8))
        channel.write(IOData.byteBuffer(ByteBuffer(string: "head")), promise: nil)
        channel.write(IOData.byteBuffer(ByteBuffer(string: "a-large-body")), promise: nil)
        channel.write(IOData.byteBuffer(ByteBuffer(string: "tail")), promise: nil)
        channel.write(IOData.byteBuffer(ByteBuffer(string: "12345")), promise: nil)
        channel.flush()
        // "tail" + "12345" would pass the limit of 8: two writes.
        #expect(try written(channel) == ["head", "a-large-body", "tail", "12345"])
        _ = try channel.finish()
    }

    /// Sees what reaches the head side: writes (completed at once) and the close.
    private final class Recorder: ChannelOutboundHandler {
        typealias OutboundIn = IOData
        var events: [String] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .byteBuffer(let buffer) = unwrapOutboundIn(data) { events.append("write " + String(buffer: buffer)) }
            promise?.succeed()
        }
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            events.append("close")
            context.close(mode: mode, promise: promise)
        }
    }

    @Test func writesBeforeACloseGoFirst() throws {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(recorder, OutboundWriteCoalescer())
        let promise = channel.eventLoop.makePromise(of: Void.self)
        var completed = false
        promise.futureResult.whenComplete { _ in completed = true }
        channel.write(IOData.byteBuffer(ByteBuffer(string: "last words")), promise: promise)
        channel.write(IOData.byteBuffer(ByteBuffer(string: "!")), promise: nil)
        channel.close(promise: nil)
        #expect(recorder.events == ["write last words!", "close"])
        #expect(completed)
    }
}
