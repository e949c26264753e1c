@testable import EdgeNode
import Testing

@Suite("Upstream pool state machine")
struct UpstreamPoolStateMachineTests {
    typealias Machine = UpstreamPoolStateMachine

    @Test func firstRequestOpensAConnectionAndRunsOnIt() {
        var machine = Machine(maxConnections: 2, maxQueued: 10)
        check(machine.lease(1), .wait(connect: true))
        #expect(machine.connecting == 1)
        #expect(machine.queuedCount == 1)
        check(machine.connected(100), .run(1))
        #expect(machine.openCount == 1)
        #expect(machine.queuedCount == 0)
        #expect(machine.state(of: 100) == .leased)
    }

    @Test func keepAliveConnectionIsParkedAndReused() {
        var machine = Machine(maxConnections: 2, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.connected(100)
        check(machine.released(100, reusable: true), .park)
        #expect(machine.idleCount == 1)
        check(machine.lease(2), .run(on: 100))
        #expect(machine.idleCount == 0)
        #expect(machine.connecting == 0)
        #expect(machine.peakConnections == 1)
    }

    @Test func mostRecentlyUsedIdleConnectionIsReusedFirst() {
        var machine = Machine(maxConnections: 2, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.lease(2)
        _ = machine.connected(100)
        _ = machine.connected(200)
        _ = machine.released(100, reusable: true)
        _ = machine.released(200, reusable: true)
        check(machine.lease(3), .run(on: 200))
        check(machine.lease(4), .run(on: 100))
    }

    @Test func neverMoreThanMaxConnectionsAndWaitersAreServedInOrder() {
        var machine = Machine(maxConnections: 2, maxQueued: 100)
        var connects = 0
        for request in 1...10 {
            if case .wait(true) = machine.lease(request) { connects += 1 }
        }
        #expect(connects == 2)
        #expect(machine.connecting == 2)
        #expect(machine.queuedCount == 10)
        check(machine.connected(100), .run(1))
        check(machine.connected(200), .run(2))
        check(machine.released(200, reusable: true), .run(3))
        check(machine.released(100, reusable: true), .run(4))
        #expect(machine.peakConnections == 2)
    }

    @Test func queueBeyondPendingConnectsIsBounded() {
        var machine = Machine(maxConnections: 1, maxQueued: 2)
        check(machine.lease(1), .wait(connect: true))  // covered by the connect
        check(machine.lease(2), .wait(connect: false))
        check(machine.lease(3), .wait(connect: false))
        check(machine.lease(4), .reject(.poolQueueFull))
        #expect(machine.queuedCount == 3)
        check(machine.connected(100), .run(1))
        check(machine.lease(5), .reject(.poolQueueFull))
        check(machine.released(100, reusable: true), .run(2))
        check(machine.lease(6), .wait(connect: false))
    }

    @Test func zeroQueueStillAllowsRequestsThatGetAConnection() {
        var machine = Machine(maxConnections: 1, maxQueued: 0)
        check(machine.lease(1), .wait(connect: true))
        check(machine.lease(2), .reject(.poolQueueFull))
        _ = machine.connected(100)
        _ = machine.released(100, reusable: true)
        check(machine.lease(3), .run(on: 100))
    }

    @Test func discardedConnectionStaysCountedUntilClosed() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.connected(100)
        check(machine.lease(2), .wait(connect: false))
        check(machine.released(100, reusable: false), .close)
        #expect(machine.state(of: 100) == .closing)
        #expect(machine.connecting == 0)  // no replacement while the old socket is open
        check(machine.closed(100), true)  // now a replacement for waiter 2
        #expect(machine.connecting == 1)
        check(machine.connected(200), .run(2))
        #expect(machine.peakConnections == 1)
    }

    @Test func idleConnectionClosedByServerIsDropped() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.connected(100)
        _ = machine.released(100, reusable: true)
        #expect(machine.idleCount == 1)
        check(machine.closed(100), false)  // nobody waits: no replacement
        #expect(machine.idleCount == 0)
        #expect(machine.openCount == 0)
        check(machine.lease(2), .wait(connect: true))
    }

    @Test func connectionClosedWhileLeasedThenReleasedIsIgnored() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.connected(100)
        check(machine.closed(100), false)
        check(machine.released(100, reusable: false), .none)
        #expect(machine.openCount == 0)
    }

    @Test func cancelledWaiterLeavesTheQueue() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.connected(100)
        _ = machine.lease(2)
        _ = machine.lease(3)
        check(machine.cancel(2), true)
        check(machine.cancel(2), false)
        #expect(machine.queuedCount == 1)
        check(machine.released(100, reusable: true), .run(3))
        check(machine.released(100, reusable: true), .park)
    }

    @Test func cancelledWaitersDoNotCountAgainstTheQueue() {
        var machine = Machine(maxConnections: 1, maxQueued: 1)
        _ = machine.lease(1)
        _ = machine.connected(100)
        check(machine.lease(2), .wait(connect: false))
        check(machine.lease(3), .reject(.poolQueueFull))
        check(machine.cancel(2), true)
        check(machine.lease(4), .wait(connect: false))
    }

    @Test func connectFailureFailsTheOldestUncoveredWaiterAndRetriesForTheRest() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.lease(2)
        check(machine.connectFailed(), .init(fail: 1, connect: true))
        check(machine.connectFailed(), .init(fail: 2, connect: false))
        #expect(machine.connecting == 0)
        #expect(machine.queuedCount == 0)
        check(machine.lease(3), .wait(connect: true))
    }

    @Test func connectFailureSparesWaitersOtherConnectsCover() {
        var machine = Machine(maxConnections: 3, maxQueued: 10)
        _ = machine.lease(1)
        _ = machine.lease(2)
        #expect(machine.connecting == 2)
        check(machine.cancel(2), true)
        // Waiter 1 is still covered by the other pending connect.
        check(machine.connectFailed(), .init(fail: nil, connect: false))
        check(machine.connected(100), .run(1))
    }

    @Test func connectFailureWithNobodyWaitingDoesNothing() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        check(machine.cancel(1), true)
        check(machine.connectFailed(), .init(fail: nil, connect: false))
        #expect(machine.openCount == 0)
    }

    @Test func connectionThatArrivesForNobodyIsParked() {
        var machine = Machine(maxConnections: 1, maxQueued: 10)
        _ = machine.lease(1)
        check(machine.cancel(1), true)
        check(machine.connected(100), .park)
        check(machine.lease(2), .run(on: 100))
    }

    @Test func requeuedRequestGoesFirstAndIsNeverRejectedForAFullQueue() {
        var machine = Machine(maxConnections: 1, maxQueued: 1)
        _ = machine.lease(1)
        _ = machine.connected(100)
        _ = machine.lease(2)
        check(machine.lease(3), .reject(.poolQueueFull))
        // Request 1 lost its (reused) connection before any response.
        check(machine.released(100, reusable: false), .close)
        check(machine.requeue(1), .wait(connect: false))
        check(machine.closed(100), true)
        check(machine.connected(200), .run(1))
        check(machine.released(200, reusable: true), .run(2))
    }

    @Test func requeueTakesAnIdleConnection() {
        var machine = Machine(maxConnections: 2, maxQueued: 1)
        _ = machine.lease(1)
        _ = machine.lease(2)
        _ = machine.connected(100)
        _ = machine.connected(200)
        _ = machine.released(200, reusable: true)
        check(machine.released(100, reusable: false), .close)
        check(machine.requeue(1), .run(on: 200))
    }

    @Test func shutdownFailsWaitersClosesConnectionsAndDrains() {
        var machine = Machine(maxConnections: 3, maxQueued: 10)
        for request in 1...4 { _ = machine.lease(request) }  // three connects, request 4 uncovered
        check(machine.connected(100), .run(1))
        check(machine.connected(200), .run(2))
        check(machine.released(200, reusable: true), .run(3))
        check(machine.released(200, reusable: true), .run(4))
        check(machine.released(200, reusable: true), .park)
        check(machine.lease(5), .run(on: 200))
        check(machine.lease(6), .wait(connect: false))  // covered by the third connect
        let action = machine.shutdown()
        #expect(action.fail == [6])
        #expect(action.close == [100, 200])
        #expect(!machine.isDrained)
        check(machine.lease(7), .reject(.shutdown))
        check(machine.requeue(5), .reject(.shutdown))
        check(machine.connected(300), .close)  // the pending connect arrives late
        check(machine.released(100, reusable: true), .none)  // already closing
        check(machine.closed(100), false)
        check(machine.closed(200), false)
        #expect(!machine.isDrained)
        check(machine.closed(300), false)
        #expect(machine.isDrained)
        check(machine.shutdown(), .init(fail: [], close: []))
    }

    @Test func burstOfTenThousandOpensOnlyMaxConnections() {
        var machine = Machine(maxConnections: 4, maxQueued: 10_000)
        var connects = 0
        var rejected = 0
        for request in 0..<10_000 {
            switch machine.lease(request) {
            case .wait(connect: true): connects += 1
            case .wait(connect: false): break
            case .reject: rejected += 1
            case .run: Issue.record("no connection can be idle yet")
            }
        }
        #expect(connects == 4)
        #expect(rejected == 0)
        #expect(machine.queuedCount == 10_000)
        // Serve everything over the four connections, in order.
        var served: [Int] = []
        for connection in 0..<4 {
            if case .run(let request) = machine.connected(connection) { served.append(request) }
        }
        var busy = Array(0..<4)
        while !busy.isEmpty {
            let connection = busy.removeFirst()
            switch machine.released(connection, reusable: true) {
            case .run(let request):
                served.append(request)
                busy.append(connection)
            case .park: break
            default: Issue.record("unexpected release action")
            }
        }
        #expect(served == Array(0..<10_000))
        #expect(machine.peakConnections == 4)
        #expect(machine.idleCount == 4)
    }

    /// Random events against a model: the connection bound holds at every step, and every
    /// request ends exactly once (run, rejected, failed or cancelled).
    @Test(arguments: [1, 2, 3, 7])
    func randomEventsKeepInvariants(seed: UInt64) {
        var random = SplitMix(seed: seed)
        let maxConnections = Int(random.next() % 4) + 1
        var machine = Machine(maxConnections: maxConnections, maxQueued: Int(random.next() % 5))
        var nextRequest = 0
        var nextConnection = 0
        var pendingConnects = 0
        var leased: [Int: Int] = [:]  // connection -> request
        var idle: Set<Int> = []
        var closing: Set<Int> = []
        var waiting: Set<Int> = []
        var ended: [Int: Int] = [:]  // request -> times ended

        func end(_ request: Int) { ended[request, default: 0] += 1 }
        func run(_ request: Int, _ connection: Int) {
            #expect(waiting.remove(request) != nil || request == nextRequest - 1, "ran a request that was not waiting")
            leased[connection] = request
            idle.remove(connection)
        }

        for _ in 0..<5_000 {
            switch random.next() % 7 {
            case 0, 1:
                let request = nextRequest
                nextRequest += 1
                switch machine.lease(request) {
                case .run(let connection):
                    #expect(idle.contains(connection))
                    run(request, connection)
                case .wait(let connect):
                    waiting.insert(request)
                    if connect { pendingConnects += 1 }
                case .reject:
                    end(request)
                }
            case 2:
                guard pendingConnects > 0 else { continue }
                pendingConnects -= 1
                let connection = nextConnection
                nextConnection += 1
                if random.next() % 4 == 0 {
                    let action = machine.connectFailed()
                    if let failed = action.fail {
                        #expect(waiting.remove(failed) != nil)
                        end(failed)
                    }
                    if action.connect { pendingConnects += 1 }
                } else {
                    switch machine.connected(connection) {
                    case .run(let request): run(request, connection)
                    case .park: idle.insert(connection)
                    case .close: closing.insert(connection)
                    }
                }
            case 3:
                guard let connection = leased.keys.sorted().randomElement(using: &random), let request = leased[connection] else { continue }
                leased[connection] = nil
                end(request)
                switch machine.released(connection, reusable: random.next() % 3 != 0) {
                case .run(let next): run(next, connection)
                case .park: idle.insert(connection)
                case .close: closing.insert(connection)
                case .none: Issue.record("release of a leased connection ignored")
                }
            case 4:
                // The server (or we) closed a connection, whatever it was doing.
                let all = (Array(idle) + Array(closing) + Array(leased.keys)).sorted()
                guard let connection = all.randomElement(using: &random) else { continue }
                idle.remove(connection)
                closing.remove(connection)
                if machine.closed(connection) { pendingConnects += 1 }
                if let request = leased.removeValue(forKey: connection) {
                    // Its exchange fails; the handler's release comes after the close.
                    check(machine.released(connection, reusable: false), .none)
                    end(request)
                }
            case 5:
                guard let request = waiting.sorted().randomElement(using: &random) else { continue }
                check(machine.cancel(request), true)
                waiting.remove(request)
                end(request)
            default:
                break
            }
            #expect(machine.openCount + machine.connecting <= maxConnections)
            #expect(machine.connecting == pendingConnects)
            #expect(machine.openCount == leased.count + idle.count + closing.count)
            #expect(machine.idleCount == idle.count)
            #expect(machine.queuedCount == waiting.count)
            // Nobody waits while a connection is idle.
            #expect(idle.isEmpty || waiting.isEmpty)
            // Waiters always have a way forward: a busy connection or a pending connect.
            #expect(waiting.isEmpty || !leased.isEmpty || !closing.isEmpty || pendingConnects > 0)
        }
        #expect(ended.values.allSatisfy { $0 == 1 })
        #expect(machine.peakConnections <= maxConnections)
    }

    @Test func waiterQueueSurvivesManyCancellations() {
        var queue = WaiterQueue()
        for id in 0..<10_000 { queue.append(id) }
        for id in 0..<10_000 where id % 10 != 0 { check(queue.remove(id), true) }
        #expect(queue.count == 1_000)
        queue.prepend(-1)
        var popped: [Int] = []
        while let id = queue.popFirst() { popped.append(id) }
        #expect(popped == [-1] + Array(stride(from: 0, to: 10_000, by: 10)))
        #expect(queue.isEmpty)
        queue.append(5)
        check(queue.removeAll(), [5])
    }
}

/// `#expect` cannot wrap a mutating call; this evaluates it first.
private func check<T: Equatable>(_ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual == expected, sourceLocation: sourceLocation)
}

/// A small deterministic generator for the random-event test.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
