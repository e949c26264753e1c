import NIOConcurrencyHelpers
import NIOCore

/// Single-flight: concurrent requests for one key share one upstream call.
///
/// The first caller (the leader) starts the call; later callers join as followers and are
/// answered by the same result, each on its own event loop, the moment it arrives (no polling).
/// A caller that goes away leaves without disturbing the others; when the last one leaves, the
/// upstream call is cancelled. Thread-safe: callers come from every event loop.
public final class Collapser<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// A caller's place in a flight, for `leave`.
    public struct Ticket: Sendable, Hashable {
        let key: Key
        let id: UInt64
        let flight: UInt64
    }

    /// What `join` hands back.
    public struct Joined: Sendable {
        public let future: EventLoopFuture<Value>
        /// `true` for the caller whose request started the upstream call.
        public let isLeader: Bool
        public let ticket: Ticket
    }

    /// How a flight's upstream call is started: its result, and how to abandon it.
    public struct Call: Sendable {
        public let result: EventLoopFuture<Value>
        public let cancel: @Sendable () -> Void

        public init(result: EventLoopFuture<Value>, cancel: @escaping @Sendable () -> Void) {
            self.result = result
            self.cancel = cancel
        }
    }

    private struct Flight {
        let id: UInt64
        var waiters: [UInt64: EventLoopPromise<Value>] = [:]
        var cancel: (@Sendable () -> Void)?
    }

    private struct State {
        var flights: [Key: Flight] = [:]
        var nextID: UInt64 = 1
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Joins the flight for `key`, starting it with `start` if there is none.
    public func join(_ key: Key, on loop: any EventLoop, start: () -> Call) -> Joined {
        let promise = loop.makePromise(of: Value.self)
        let (ticket, isLeader) = state.withLockedValue { state -> (Ticket, Bool) in
            let id = state.nextID
            state.nextID += 1
            // Mutated in place through the subscript: copying the flight out and back would copy
            // its waiter table on every join, quadratic in the number of waiters (10,000 readers
            // on one offset made that the edge's whole CPU profile).
            if let flightID = state.flights[key]?.id {
                state.flights[key]!.waiters[id] = promise
                return (Ticket(key: key, id: id, flight: flightID), false)
            }
            var flight = Flight(id: id)
            flight.waiters[id] = promise
            state.flights[key] = flight
            return (Ticket(key: key, id: id, flight: id), true)
        }
        if isLeader {
            // Started outside the lock: the call may complete synchronously.
            let call = start()
            let cancelNow: Bool = state.withLockedValue { state in
                guard state.flights[key]?.id == ticket.flight else { return true }
                state.flights[key]!.cancel = call.cancel
                return false
            }
            if cancelNow { call.cancel() }
            call.result.whenComplete { [weak self] result in self?.finish(key, flight: ticket.flight, with: result) }
        }
        return Joined(future: promise.futureResult, isLeader: isLeader, ticket: ticket)
    }

    /// The caller is no longer interested. Its future fails with `CancellationError`; if it
    /// was the last waiter, the upstream call is cancelled.
    public func leave(_ ticket: Ticket) {
        let (promise, cancel): (EventLoopPromise<Value>?, (@Sendable () -> Void)?) = state.withLockedValue { state in
            guard state.flights[ticket.key]?.id == ticket.flight,
                let promise = state.flights[ticket.key]!.waiters.removeValue(forKey: ticket.id)
            else { return (nil, nil) }
            if state.flights[ticket.key]!.waiters.isEmpty {
                return (promise, state.flights.removeValue(forKey: ticket.key)?.cancel)
            }
            return (promise, nil)
        }
        promise?.fail(CancellationError())
        cancel?()
    }

    /// Number of flights in progress (for tests and metrics).
    public var inFlight: Int { state.withLockedValue { $0.flights.count } }

    /// Waiters across all flights.
    public var totalWaiters: Int { state.withLockedValue { $0.flights.values.reduce(0) { $0 + $1.waiters.count } } }

    /// Waiters on `key`'s flight, leader included.
    public func waiters(for key: Key) -> Int { state.withLockedValue { $0.flights[key]?.waiters.count ?? 0 } }

    private func finish(_ key: Key, flight id: UInt64, with result: Result<Value, any Error>) {
        let waiters: [EventLoopPromise<Value>] = state.withLockedValue { state in
            guard let flight = state.flights[key], flight.id == id else { return [] }
            state.flights.removeValue(forKey: key)
            return Array(flight.waiters.values)
        }
        Self.complete(waiters, with: result)
    }

    /// Completes each waiter on its own loop with one task per event loop rather than one per
    /// waiter (what `completeWith` from another loop costs): 1,000 long-polls on two loops are
    /// two hops, not 1,000. Waiters on the calling loop are completed in place.
    private static func complete(_ waiters: [EventLoopPromise<Value>], with result: Result<Value, any Error>) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, promises: [EventLoopPromise<Value>])] = [:]
        for waiter in waiters {
            let loop = waiter.futureResult.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].promises.append(waiter)
        }
        // The other loops get their task first, then this loop's waiters are answered in place.
        var here: [EventLoopPromise<Value>] = []
        for (loop, promises) in byLoop.values {
            if loop.inEventLoop {
                here = promises
            } else {
                loop.execute { for promise in promises { promise.completeWith(result) } }
            }
        }
        for promise in here { promise.completeWith(result) }
    }
}
