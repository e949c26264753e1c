/// The life of one buffered upstream request (`UpstreamPendingRequest`) as a plain value:
/// queued for a connection, running on one, finished. It finishes exactly once, by whichever of
/// response, error, timeout, cancellation or shutdown comes first; later events find it finished
/// and do nothing. A request that lost a reused connection before any response may go back to
/// the queue, at most `maxRetries` times.
///
/// No I/O and no locks: events come from the caller's loop (timeout, cancellation), the
/// connection's loop (response, error) and the pool (lease, shutdown), so
/// `UpstreamPendingRequest` keeps this under its lock and carries out the returned actions
/// outside it. Generic over the connection and the timeout timer so that tests need neither a
/// channel nor an event loop.
struct UpstreamRequestStateMachine<Connection, Timer> {
    enum Phase {
        /// Waiting in the pool's queue (or about to be handed a connection).
        case queued
        /// The exchange runs on this connection.
        case running(Connection)
        case finished
    }

    let maxRetries: Int
    private(set) var phase = Phase.queued
    private(set) var retries = 0
    /// The timeout, once scheduled; handed back to be cancelled when the request finishes.
    private var timeout: Timer?

    init(maxRetries: Int) {
        self.maxRetries = maxRetries
    }

    var isFinished: Bool {
        if case .finished = phase { true } else { false }
    }

    /// The timeout was scheduled. Returns it to cancel at once if the request finished before
    /// it could be recorded.
    mutating func timeoutScheduled(_ timer: Timer) -> Timer? {
        if isFinished { return timer }
        timeout = timer
        return nil
    }

    /// The pool leased `connection` to this request. False if the request gave up meanwhile:
    /// the caller gives the connection back.
    mutating func claim(_ connection: Connection) -> Bool {
        guard case .queued = phase else { return false }
        phase = .running(connection)
        return true
    }

    /// Its connection failed before any response. True if the request should queue again; false
    /// if it is not running or has no retries left, and fails instead.
    mutating func retry() -> Bool {
        guard case .running = phase, retries < maxRetries else { return false }
        retries += 1
        phase = .queued
        return true
    }

    enum CompleteAction {
        /// Already finished: nothing to do.
        case none
        /// Complete the promise, and cancel the timeout if one was scheduled.
        case complete(cancelTimeout: Timer?)
    }

    /// A response, an error, a refusal or shutdown.
    mutating func complete() -> CompleteAction {
        if isFinished { return .none }
        phase = .finished
        defer { timeout = nil }
        return .complete(cancelTimeout: timeout)
    }

    enum AbandonAction {
        /// Already finished: nothing to do.
        case none
        /// Cancel the timeout, leave the pool's queue, fail the promise.
        case leaveQueue(cancelTimeout: Timer?)
        /// Cancel the timeout, drop the connection running the exchange, fail the promise.
        case abort(Connection, cancelTimeout: Timer?)
    }

    /// The request timed out or was cancelled: it fails now, whatever it was doing.
    mutating func abandon() -> AbandonAction {
        let previous = phase
        phase = .finished
        defer { timeout = nil }
        switch previous {
        case .finished: return .none
        case .queued: return .leaveQueue(cancelTimeout: timeout)
        case .running(let connection): return .abort(connection, cancelTimeout: timeout)
        }
    }
}

extension UpstreamRequestStateMachine: Sendable where Connection: Sendable, Timer: Sendable {}
extension UpstreamRequestStateMachine.Phase: Sendable where Connection: Sendable, Timer: Sendable {}
extension UpstreamRequestStateMachine.CompleteAction: Equatable where Timer: Equatable {}
extension UpstreamRequestStateMachine.AbandonAction: Equatable where Connection: Equatable, Timer: Equatable {}
