import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP connection that writes exactly the bytes a test gives it: for clients that misbehave
/// (partial heads, stalled uploads, pipelining without reading), and to learn whether the server
/// closed the connection.
public final class RawConnection: Sendable {
    public let channel: any Channel
    private let received: NIOLockedValueBox<[UInt8]>

    private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    /// Connects to `127.0.0.1:port`. With `reading: false` the client never reads, so what the
    /// server sends piles up in the kernel's buffers and then in the server.
    public static func connect(port: Int, reading: Bool = true) async throws -> RawConnection {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reading)
            .channelOption(.socketOption(.so_rcvbuf), value: reading ? 1 << 16 : 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawCollector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Everything received so far.
    public var text: String { String(decoding: received.withLockedValue { $0 }, as: UTF8.self) }

    /// Waits until the server closes the connection; `true` if it did, `false` if `bound` passed
    /// first (then the test closes it). The bound keeps a broken server from hanging the suite;
    /// it does not decide a passing outcome.
    public func closedByServer(within bound: TimeAmount = .seconds(60)) async throws -> Bool {
        let timedOut = NIOLockedValueBox(false)
        let guardTask = channel.eventLoop.scheduleTask(in: bound) {
            timedOut.withLockedValue { $0 = true }
            self.channel.close(promise: nil)
        }
        try await channel.closeFuture.get()
        guardTask.cancel()
        return !timedOut.withLockedValue { $0 }
    }

    public func close() async {
        try? await channel.close()
    }
}
