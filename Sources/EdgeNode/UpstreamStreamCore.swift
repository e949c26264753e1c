import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One `stream` call: its dedicated connection and the delivery of callbacks on the caller's
/// loop. `onEnd` is delivered exactly once; after it, nothing.
final class UpstreamStreamCore: Sendable {
    let id: Int
    let eventLoop: any EventLoop
    let closed: EventLoopPromise<Void>
    private let onHead: @Sendable (HTTPResponseHead) -> Void
    private let onBody: @Sendable (ByteBuffer) -> Void
    private let onEnd: @Sendable ((any Error)?) -> Void
    /// `cancel` comes from any thread, `attach` from the connection's loop, the rest from
    /// `eventLoop`; never held while calling out.
    private let state = NIOLockedValueBox(UpstreamStreamStateMachine<UpstreamConnection>())

    init(
        id: Int, eventLoop: any EventLoop, closed: EventLoopPromise<Void>, onHead: @escaping @Sendable (HTTPResponseHead) -> Void,
        onBody: @escaping @Sendable (ByteBuffer) -> Void, onEnd: @escaping @Sendable ((any Error)?) -> Void
    ) {
        self.id = id
        self.eventLoop = eventLoop
        self.closed = closed
        self.onHead = onHead
        self.onBody = onBody
        self.onEnd = onEnd
    }

    /// The connection is up; false if the stream was cancelled meanwhile.
    func attach(_ connection: UpstreamConnection) -> Bool {
        state.withLockedValue { $0.attach(connection) }
    }

    func cancel(_ error: UpstreamError) {
        let connection = state.withLockedValue { $0.cancel(error) }
        connection?.channel.close(promise: nil)
        eventLoop.execute { self.deliverEnd(error) }
    }

    func deliverHead(_ head: HTTPResponseHead) {
        onLoop {
            guard self.isStreaming else { return }
            self.onHead(head)
        }
    }

    func deliverBody(_ body: ByteBuffer) {
        onLoop {
            guard self.isStreaming else { return }
            self.onBody(body)
        }
    }

    /// The response ended (`nil`) or the connection failed.
    func connectionEnded(_ error: (any Error)?) {
        onLoop { self.deliverEnd(error) }
    }

    private var isStreaming: Bool {
        state.withLockedValue { $0.isStreaming }
    }

    private func deliverEnd(_ error: (any Error)?) {
        guard case .deliver(let error) = state.withLockedValue({ $0.end(error) }) else { return }
        onEnd(error)
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }
}
