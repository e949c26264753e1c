import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One `execute` call, from queueing to its promise's completion. Its promise is completed
/// exactly once, by whichever of response, error, timeout, cancellation or shutdown comes first;
/// `UpstreamRequestStateMachine` decides which, and this class carries out its answers.
final class UpstreamPendingRequest: Sendable {
    let id: Int
    let head: HTTPRequestHead
    let body: ByteBuffer?
    private let promise: EventLoopPromise<UpstreamResponse>
    private let pool: UpstreamConnectionPool
    /// Touched from the caller's loop (timeout, cancellation), the connection's loop (response,
    /// error, retry) and the pool (lease, shutdown); never held while calling out.
    private let state = NIOLockedValueBox(
        UpstreamRequestStateMachine<UpstreamConnection, Scheduled<Void>>(maxRetries: UpstreamConnectionPool.maxRetries))

    init(id: Int, head: HTTPRequestHead, body: ByteBuffer?, promise: EventLoopPromise<UpstreamResponse>, pool: UpstreamConnectionPool) {
        self.id = id
        self.head = head
        self.body = body
        self.promise = promise
        self.pool = pool
    }

    var isFinished: Bool {
        state.withLockedValue { $0.isFinished }
    }

    func setTimeout(_ task: Scheduled<Void>) {
        state.withLockedValue { $0.timeoutScheduled(task) }?.cancel()
    }

    /// Takes the connection the pool leased; false if the request already gave up.
    func claim(_ connection: UpstreamConnection) -> Bool {
        state.withLockedValue { $0.claim(connection) }
    }

    /// The connection failed before any response: queue again if retries are left.
    func retry() -> Bool {
        let again = state.withLockedValue { $0.retry() }
        if again { pool.requeue(self) }
        return again
    }

    func complete(_ result: Result<UpstreamResponse, UpstreamError>) {
        guard case .complete(let timeout) = state.withLockedValue({ $0.complete() }) else { return }
        timeout?.cancel()
        switch result {
        case .success(let response): promise.succeed(response)
        case .failure(let error): promise.fail(error)
        }
    }

    /// Timeout or cancellation: fail now, and leave the queue or drop the connection.
    func abandon(_ error: UpstreamError) {
        switch state.withLockedValue({ $0.abandon() }) {
        case .none:
            return
        case .leaveQueue(let timeout):
            timeout?.cancel()
            pool.cancelWaiter(self)
            promise.fail(error)
        case .abort(let connection, let timeout):
            timeout?.cancel()
            connection.abort(self)
            promise.fail(error)
        }
    }
}
