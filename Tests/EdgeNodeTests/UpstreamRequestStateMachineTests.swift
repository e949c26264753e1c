@testable import EdgeNode
import Testing

@Suite("Upstream request state machine")
struct UpstreamRequestStateMachineTests {
    /// Connections are names and timeouts numbers: no channel, no event loop.
    typealias Machine = UpstreamRequestStateMachine<String, Int>

    @Test func leasedRequestCompletesExactlyOnce() {
        var machine = Machine(maxRetries: 3)
        check(machine.claim("a"), true)
        check(machine.complete(), .complete(cancelTimeout: nil))
        #expect(machine.isFinished)
        check(machine.complete(), .none)
        check(machine.abandon(), .none)
        check(machine.retry(), false)
    }

    @Test func finishingHandsBackTheTimeoutToCancel() {
        var machine = Machine(maxRetries: 3)
        check(machine.timeoutScheduled(1), nil)
        check(machine.claim("a"), true)
        check(machine.complete(), .complete(cancelTimeout: 1))
    }

    @Test func timeoutScheduledAfterFinishingIsCancelledAtOnce() {
        // A request refused by the pool finishes before `execute` schedules its timeout.
        var machine = Machine(maxRetries: 3)
        check(machine.complete(), .complete(cancelTimeout: nil))
        check(machine.timeoutScheduled(1), 1)
    }

    @Test func abandonedWhileQueuedLeavesTheQueueAndRefusesALateConnection() {
        var machine = Machine(maxRetries: 3)
        check(machine.timeoutScheduled(1), nil)
        check(machine.abandon(), .leaveQueue(cancelTimeout: 1))
        // The pool had already picked it: the connection goes back.
        check(machine.claim("a"), false)
        check(machine.complete(), .none)
    }

    @Test func abandonedWhileRunningDropsItsConnection() {
        var machine = Machine(maxRetries: 3)
        check(machine.timeoutScheduled(1), nil)
        check(machine.claim("a"), true)
        check(machine.abandon(), .abort("a", cancelTimeout: 1))
        // The connection's failure that follows finds it finished.
        check(machine.retry(), false)
        check(machine.complete(), .none)
    }

    @Test func retriesAreBoundedAndKeepTheTimeout() {
        var machine = Machine(maxRetries: 2)
        check(machine.timeoutScheduled(1), nil)
        check(machine.claim("a"), true)
        check(machine.retry(), true)
        #expect(!machine.isFinished)
        check(machine.claim("b"), true)
        check(machine.retry(), true)
        check(machine.claim("c"), true)
        check(machine.retry(), false)
        #expect(machine.retries == 2)
        // Out of retries it is still running: the caller fails it.
        check(machine.abandon(), .abort("c", cancelTimeout: 1))
    }

    @Test func onlyARunningRequestRetries() {
        var machine = Machine(maxRetries: 3)
        check(machine.retry(), false)
        check(machine.claim("a"), true)
        check(machine.claim("b"), false)
        check(machine.retry(), true)
        check(machine.retry(), false)
        #expect(machine.retries == 1)
    }
}

/// `#expect` cannot wrap a mutating call; this evaluates it first.
private func check<T: Equatable>(_ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual == expected, sourceLocation: sourceLocation)
}
