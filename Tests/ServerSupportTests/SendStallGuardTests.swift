import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import ServerSupport
import Testing

/// The connection-level guard on an EmbeddedChannel: the test says how many bytes wait for the
/// socket and moves the loop's clock (send timeout 30 s, at least 100 bytes/s).
@Suite("SendStallGuard")
struct SendStallGuardTests {
    final class Fixture: Sendable {
        let queued = NIOLockedValueBox(0)
        let stalls = NIOLockedValueBox(0)
        let channel = EmbeddedChannel()

        init() throws {
            let guardHandler = SendStallGuard(
                limits: ConnectionTimeoutsTests().limits, queuedBytes: { [queued] _ in queued.withLockedValue { $0 } },
                onStall: { [stalls] in stalls.withLockedValue { $0 += 1 } })
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Writes `count` bytes through the guard, of which `stay` remain queued after the flush.
        func send(_ count: Int, stay: Int) throws {
            queued.withLockedValue { $0 = stay }
            try channel.writeOutbound(IOData.byteBuffer(ByteBuffer(repeating: 0x61, count: count)))
            _ = try channel.readOutbound(as: IOData.self)
        }

        func advance(_ seconds: Int64) { channel.embeddedEventLoop.advanceTime(by: .seconds(seconds)) }
    }

    @Test func aClientThatStopsReadingTheConnectionIsClosedAfterTheSendTimeout() throws {
        let fixture = try Fixture()
        try fixture.send(50_000, stay: 40_000)
        fixture.advance(29)
        #expect(fixture.channel.isActive)
        fixture.advance(1)
        #expect(!fixture.channel.isActive)
        #expect(fixture.stalls.withLockedValue { $0 } == 1)
    }

    @Test func aSlowButSteadyReaderIsKept() throws {
        let fixture = try Fixture()
        try fixture.send(50_000, stay: 40_000)
        // 3,000 bytes taken in each 30 s: the minimum rate.
        for left in stride(from: 37_000, through: 1_000, by: -3_000) {
            fixture.queued.withLockedValue { $0 = left }
            fixture.advance(30)
            #expect(fixture.channel.isActive)
        }
        #expect(fixture.stalls.withLockedValue { $0 } == 0)
    }

    @Test func nothingIsWatchedOnceTheQueueEmpties() throws {
        let fixture = try Fixture()
        try fixture.send(50_000, stay: 40_000)
        fixture.advance(10)
        try fixture.send(10, stay: 0)
        fixture.advance(3_600)
        #expect(fixture.channel.isActive)
        #expect(fixture.stalls.withLockedValue { $0 } == 0)
    }
}
