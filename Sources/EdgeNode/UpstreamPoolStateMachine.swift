/// The bookkeeping of `UpstreamClient`'s connection pool: which connections exist, which are
/// idle, which requests wait, and when to open another connection. No I/O and no locks: each
/// event returns what the caller must do, and the caller does it outside its lock.
///
/// Invariants:
/// - `openCount + connecting <= maxConnections`, always (a connection that is being closed
///   still counts until its close completes).
/// - A waiter is "covered" while a connect is pending for it; at most `maxQueued` waiters are
///   uncovered. A request that can have a connection opened for it is never refused.
/// - Waiters are served first in, first out; a request that lost a reused connection before any
///   response arrived goes back to the front.
struct UpstreamPoolStateMachine: Sendable {
    typealias ConnectionID = Int
    typealias RequestID = Int

    enum ConnectionState: Sendable, Equatable {
        case idle
        case leased
        case closing
    }

    let maxConnections: Int
    let maxQueued: Int
    /// Connects started and not yet finished.
    private(set) var connecting = 0
    /// The most connections (open and connecting) there have ever been at once.
    private(set) var peakConnections = 0
    private(set) var isShutdown = false
    private var connections: [ConnectionID: ConnectionState] = [:]
    /// Idle connections, the most recently used last (reused first: it is the least likely to
    /// have been closed by the server).
    private var idle: [ConnectionID] = []
    private var waiters = WaiterQueue()

    init(maxConnections: Int, maxQueued: Int) {
        precondition(maxConnections > 0, "maxConnections must be positive")
        self.maxConnections = maxConnections
        self.maxQueued = max(0, maxQueued)
    }

    /// Established connections, idle, leased or closing.
    var openCount: Int { connections.count }
    var idleCount: Int { idle.count }
    var queuedCount: Int { waiters.count }
    /// Shut down and every connection gone.
    var isDrained: Bool { isShutdown && connecting == 0 && connections.isEmpty }

    func state(of connection: ConnectionID) -> ConnectionState? { connections[connection] }

    // MARK: Requests

    enum LeaseAction: Sendable, Equatable {
        /// Send the request on this (previously idle) connection.
        case run(on: ConnectionID)
        /// The request waits; open one new connection if `connect`.
        case wait(connect: Bool)
        /// Fail the request at once.
        case reject(UpstreamError.Kind)
    }

    /// A request wants a connection.
    mutating func lease(_ request: RequestID) -> LeaseAction {
        if isShutdown { return .reject(.shutdown) }
        if let connection = idle.popLast() {
            connections[connection] = .leased
            return .run(on: connection)
        }
        waiters.append(request)
        if startConnectIfNeeded() { return .wait(connect: true) }
        if waiters.count - connecting > maxQueued {
            waiters.removeLastAppended(request)
            return .reject(.poolQueueFull)
        }
        return .wait(connect: false)
    }

    /// A request lost a reused connection before any response arrived and may be sent again.
    /// It goes to the front of the queue and is never refused for a full queue.
    mutating func requeue(_ request: RequestID) -> LeaseAction {
        if isShutdown { return .reject(.shutdown) }
        if let connection = idle.popLast() {
            connections[connection] = .leased
            return .run(on: connection)
        }
        waiters.prepend(request)
        return .wait(connect: startConnectIfNeeded())
    }

    /// A waiting request gave up (timeout, cancellation). Returns whether it was still waiting;
    /// if not, it has been (or is being) handed a connection, and the caller gives that back.
    mutating func cancel(_ request: RequestID) -> Bool {
        waiters.remove(request)
    }

    // MARK: Connections

    enum ConnectedAction: Sendable, Equatable {
        case run(RequestID)
        case park
        case close
    }

    /// A connect succeeded.
    mutating func connected(_ connection: ConnectionID) -> ConnectedAction {
        precondition(connecting > 0, "connected without a pending connect")
        connecting -= 1
        if isShutdown {
            connections[connection] = .closing
            return .close
        }
        if let request = waiters.popFirst() {
            connections[connection] = .leased
            return .run(request)
        }
        connections[connection] = .idle
        idle.append(connection)
        return .park
    }

    struct ConnectFailedAction: Sendable, Equatable {
        /// The waiter that fails with the connect error, if any is left uncovered.
        var fail: RequestID?
        /// Open another connection for the waiters that remain.
        var connect: Bool
    }

    /// A connect failed. The oldest waiter that no other pending connect covers fails with it.
    mutating func connectFailed() -> ConnectFailedAction {
        precondition(connecting > 0, "connect failure without a pending connect")
        connecting -= 1
        var fail: RequestID?
        if waiters.count > connecting { fail = waiters.popFirst() }
        return ConnectFailedAction(fail: fail, connect: startConnectIfNeeded())
    }

    enum ReleaseAction: Sendable, Equatable {
        /// Send this waiting request on the connection.
        case run(RequestID)
        /// The connection is idle now.
        case park
        /// Close the connection; it stays counted until `closed` is reported.
        case close
        /// Unknown or already closing connection: nothing to do.
        case none
    }

    /// A leased connection finished its exchange. `reusable` is false after an error, a
    /// `Connection: close`, a timeout or a cancellation.
    mutating func released(_ connection: ConnectionID, reusable: Bool) -> ReleaseAction {
        guard let state = connections[connection], state == .leased else { return .none }
        if !reusable || isShutdown {
            connections[connection] = .closing
            return .close
        }
        if let request = waiters.popFirst() { return .run(request) }
        connections[connection] = .idle
        idle.append(connection)
        return .park
    }

    /// A connection's channel closed, whatever it was doing. Returns whether to open a
    /// replacement for the waiters.
    mutating func closed(_ connection: ConnectionID) -> Bool {
        guard let state = connections.removeValue(forKey: connection) else { return false }
        if state == .idle, let index = idle.firstIndex(of: connection) { idle.remove(at: index) }
        return startConnectIfNeeded()
    }

    // MARK: Shutdown

    struct ShutdownAction: Sendable, Equatable {
        /// Waiters to fail with `.shutdown`, oldest first.
        var fail: [RequestID]
        /// Connections to close, idle and leased.
        var close: [ConnectionID]
    }

    mutating func shutdown() -> ShutdownAction {
        guard !isShutdown else { return ShutdownAction(fail: [], close: []) }
        isShutdown = true
        let fail = waiters.removeAll()
        var close: [ConnectionID] = []
        for (connection, state) in connections where state != .closing {
            connections[connection] = .closing
            close.append(connection)
        }
        idle.removeAll()
        return ShutdownAction(fail: fail, close: close.sorted())
    }

    // MARK: Private

    private mutating func startConnectIfNeeded() -> Bool {
        guard !isShutdown, waiters.count > connecting, connections.count + connecting < maxConnections else {
            return false
        }
        connecting += 1
        peakConnections = max(peakConnections, connections.count + connecting)
        return true
    }
}

/// A FIFO of request IDs with O(1) append, pop and (lazy) removal from the middle.
struct WaiterQueue: Sendable {
    /// Requeued requests, served before `items`; the last one is served first.
    private var front: [Int] = []
    private var items: [Int] = []
    private var head = 0
    /// The IDs actually waiting; `items` and `front` may hold stale ones.
    private var live: Set<Int> = []

    var count: Int { live.count }
    var isEmpty: Bool { live.isEmpty }

    mutating func append(_ id: Int) {
        items.append(id)
        live.insert(id)
    }

    mutating func prepend(_ id: Int) {
        front.append(id)
        live.insert(id)
    }

    /// Undoes the `append` just made.
    mutating func removeLastAppended(_ id: Int) {
        assert(items.last == id)
        items.removeLast()
        live.remove(id)
    }

    /// Returns whether `id` was waiting.
    @discardableResult
    mutating func remove(_ id: Int) -> Bool {
        guard live.remove(id) != nil else { return false }
        compactIfNeeded()
        return true
    }

    mutating func popFirst() -> Int? {
        while let id = front.popLast() {
            if live.remove(id) != nil { return id }
        }
        while head < items.count {
            let id = items[head]
            head += 1
            if live.remove(id) != nil {
                compactIfNeeded()
                return id
            }
        }
        compactIfNeeded()
        return nil
    }

    /// Every waiting ID, oldest first (requeued ones before the rest), leaving the queue empty.
    mutating func removeAll() -> [Int] {
        var all: [Int] = []
        all.reserveCapacity(live.count)
        while let id = popFirst() { all.append(id) }
        front = []
        items = []
        head = 0
        return all
    }

    private mutating func compactIfNeeded() {
        let stored = items.count - head
        if stored == 0 {
            items.removeAll(keepingCapacity: items.capacity <= 4096)
            head = 0
        } else if stored > 2 * live.count + 64 {
            // Mostly tombstones of cancelled waiters.
            let live = self.live
            items = items[head...].filter { live.contains($0) }
            head = 0
        } else if head > 1024, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
