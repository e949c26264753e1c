import NIOConcurrencyHelpers
import NIOCore

/// A handler that can wind its connection down when the server stops: end what is in flight
/// promptly, then close. Called on the connection's event loop.
public protocol QuiescingHandler: AnyObject {
    func quiesce()
}

/// The open connections of a server, so that shutdown can ask each to wind down and wait for
/// them to go.
public final class ConnectionRegistry: Sendable {
    /// A handler reachable from any thread; it is only touched on `loop`, through `execute`.
    private struct Entry: @unchecked Sendable {
        let handler: any QuiescingHandler
        let loop: any EventLoop
        let channel: any Channel
    }

    private let entries = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])

    public init() {}

    /// Tracks `channel` until it closes.
    public func track(_ channel: any Channel, _ handler: any QuiescingHandler) {
        let key = ObjectIdentifier(channel)
        entries.withLockedValue { $0[key] = Entry(handler: handler, loop: channel.eventLoop, channel: channel) }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.entries.withLockedValue { $0.removeValue(forKey: key) }
        }
    }

    public var count: Int { entries.withLockedValue { $0.count } }

    /// Response bytes written by the server but not yet taken by the clients' sockets, over all
    /// connections: what clients that do not read cost in memory right now.
    public func queuedResponseBytes() async -> Int {
        var total = 0
        for entry in entries.withLockedValue({ Array($0.values) }) {
            let channel = entry.channel
            let bytes = try? await entry.loop.submit {
                try channel.syncOptions?.getOption(.bufferedWritableBytes) ?? 0
            }.get()
            total += bytes ?? 0
        }
        return total
    }

    /// Asks every connection to wind down, then waits until all have closed or `gracePeriod`
    /// has passed.
    public func quiesceAll(gracePeriod: TimeAmount) async throws {
        for entry in entries.withLockedValue({ Array($0.values) }) {
            entry.loop.execute { entry.handler.quiesce() }
        }
        let deadline = NIODeadline.now() + gracePeriod
        while NIODeadline.now() < deadline, count > 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
