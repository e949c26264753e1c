import NIOConcurrencyHelpers
import NIOCore

/// Forward auth: an HTTP endpoint decides whether a request may proceed (as Traefik's
/// `forwardAuth` and Caddy's `forward_auth` do). Each check (`ForwardAuthCheck`) is answered
/// from the decisions remembered for `forward_auth_cache`, or by joining the same check already
/// in flight, or by asking the endpoint: 2xx allows, 401 and 403 refuse, anything else (another
/// status, no connection, no answer in time) fails, and a failure never allows (fail closed).
public final class ForwardAuthority: Sendable {
    public let client: ForwardAuthClient
    /// Checks being asked of the endpoint at once, at most: beyond it a request gets 503 at
    /// once, so a slow endpoint cannot make requests pile up without end.
    public let maxChecksInFlight: Int
    /// What happened to each check, for metrics.
    public typealias Observer = @Sendable (Event) -> Void

    public enum Event: Sendable, Equatable {
        /// The endpoint was asked, and this came of it (`.allowed`, `.refused` or `.failed`).
        case asked(ForwardAuthDecision)
        /// A remembered decision answered.
        case cached
        /// The same check was in flight and its answer was shared.
        case joined
        /// Too many checks in flight: refused without asking.
        case busy
    }

    private struct State {
        var decisions: ForwardAuthDecisionCache
        /// Checks being asked now, by key: a second identical check waits for the first's answer.
        var flights: [ForwardAuthCheck.Key: EventLoopFuture<ForwardAuthDecision>] = [:]
    }

    private let state: NIOLockedValueBox<State>
    private let clock: @Sendable () -> NIODeadline
    private let observer: Observer?

    /// - Parameters:
    ///   - cacheLifetime: how long a decision is reused; zero asks every time (identical checks
    ///     in flight together still share one answer).
    ///   - clock: the time decisions expire by; injectable for tests.
    public init(
        client: ForwardAuthClient, cacheLifetime: TimeAmount, cacheCapacity: Int = 10_000, maxChecksInFlight: Int = 64,
        clock: @escaping @Sendable () -> NIODeadline = { .now() }, observer: Observer? = nil
    ) {
        self.client = client
        self.maxChecksInFlight = maxChecksInFlight
        self.clock = clock
        self.observer = observer
        state = NIOLockedValueBox(State(decisions: ForwardAuthDecisionCache(capacity: cacheCapacity, lifetime: cacheLifetime)))
    }

    /// Decisions remembered now.
    public var cachedDecisions: Int { state.withLockedValue { $0.decisions.count } }

    /// Decides `check`, on `loop`. Never fails: trouble is a `.failed` decision.
    public func decide(_ check: ForwardAuthCheck, on loop: any EventLoop) -> EventLoopFuture<ForwardAuthDecision> {
        enum Step {
            case decided(ForwardAuthDecision)
            case join(EventLoopFuture<ForwardAuthDecision>)
            case busy
            case ask(EventLoopPromise<ForwardAuthDecision>)
        }
        let key = check.key
        let now = clock()
        // One lock for the cache and the flights: a check cannot miss both a decision being
        // stored and the flight that stores it.
        let step = state.withLockedValue { state -> Step in
            if let decision = state.decisions.decision(for: key, now: now) { return .decided(decision) }
            if let flight = state.flights[key] { return .join(flight) }
            guard state.flights.count < maxChecksInFlight else { return .busy }
            let promise = loop.makePromise(of: ForwardAuthDecision.self)
            state.flights[key] = promise.futureResult
            return .ask(promise)
        }
        switch step {
        case .decided(let decision):
            observer?(.cached)
            return loop.makeSucceededFuture(decision)
        case .join(let flight):
            observer?(.joined)
            return flight.hop(to: loop)
        case .busy:
            observer?(.busy)
            return loop.makeSucceededFuture(.busy)
        case .ask(let promise):
            client.ask(check.headers, on: loop).whenComplete { [state, clock, observer] result in
                let decision: ForwardAuthDecision
                switch result {
                case .success(let answer): decision = ForwardAuthDecision(status: answer.status, headers: answer.headers)
                case .failure(let error as ForwardAuthClient.Failure): decision = .failed(error.description)
                case .failure: decision = .failed(ForwardAuthClient.Failure.unreachable.description)
                }
                // Stored before the flight ends, so the next identical check finds one or the other.
                let now = clock()
                state.withLockedValue { state in
                    state.decisions.store(decision, for: key, now: now)
                    state.flights[key] = nil
                }
                observer?(.asked(decision))
                promise.succeed(decision)
            }
            return promise.futureResult
        }
    }
}
