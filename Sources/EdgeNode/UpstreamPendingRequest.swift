import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One `execute` call, from queueing to its promise's completion. Its promise is completed
/// exactly once, by whichever of response, error, timeout, cancellation or shutdown comes first.
final class UpstreamPendingRequest: Sendable {
    let id: Int
    let head: HTTPRequestHead
    let body: ByteBuffer?
    private let promise: EventLoopPromise<UpstreamResponse>
    private let pool: UpstreamConnectionPool
    private let state = NIOLockedValueBox(State())

    private struct State {
        enum Phase {
            case queued
            case running(UpstreamConnection)
            case finished
        }
        var phase = Phase.queued
        var retries = 0
        var timeout: Scheduled<Void>?
    }

    init(id: Int, head: HTTPRequestHead, body: ByteBuffer?, promise: EventLoopPromise<UpstreamResponse>, pool: UpstreamConnectionPool) {
        self.id = id
        self.head = head
        self.body = body
        self.promise = promise
        self.pool = pool
    }

    var isFinished: Bool {
        state.withLockedValue { if case .finished = $0.phase { true } else { false } }
    }

    func setTimeout(_ task: Scheduled<Void>) {
        let finished = state.withLockedValue { state in
            if case .finished = state.phase { return true }
            state.timeout = task
            return false
        }
        if finished { task.cancel() }
    }

    /// Takes the connection the pool leased; false if the request already gave up.
    func claim(_ connection: UpstreamConnection) -> Bool {
        state.withLockedValue { state in
            guard case .queued = state.phase else { return false }
            state.phase = .running(connection)
            return true
        }
    }

    /// The connection failed before any response: queue again if retries are left.
    func retry() -> Bool {
        let again = state.withLockedValue { state in
            guard case .running = state.phase, state.retries < UpstreamConnectionPool.maxRetries else { return false }
            state.retries += 1
            state.phase = .queued
            return true
        }
        if again { pool.requeue(self) }
        return again
    }

    func complete(_ result: Result<UpstreamResponse, UpstreamError>) {
        let (done, timeout) = state.withLockedValue { state -> (Bool, Scheduled<Void>?) in
            if case .finished = state.phase { return (false, nil) }
            state.phase = .finished
            defer { state.timeout = nil }
            return (true, state.timeout)
        }
        guard done else { return }
        timeout?.cancel()
        switch result {
        case .success(let response): promise.succeed(response)
        case .failure(let error): promise.fail(error)
        }
    }

    /// Timeout or cancellation: fail now, and leave the queue or drop the connection.
    func abandon(_ error: UpstreamError) {
        let (previous, timeout) = state.withLockedValue { state -> (State.Phase, Scheduled<Void>?) in
            let previous = state.phase
            state.phase = .finished
            defer { state.timeout = nil }
            return (previous, state.timeout)
        }
        switch previous {
        case .finished:
            return
        case .queued:
            timeout?.cancel()
            pool.cancelWaiter(self)
            promise.fail(error)
        case .running(let connection):
            timeout?.cancel()
            connection.abort(self)
            promise.fail(error)
        }
    }
}
