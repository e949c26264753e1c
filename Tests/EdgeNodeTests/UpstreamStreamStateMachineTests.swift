@testable import EdgeNode
import Testing

@Suite("Upstream stream state machine")
struct UpstreamStreamStateMachineTests {
    /// Connections are names: no channel.
    typealias Machine = UpstreamStreamStateMachine<String>

    @Test func streamThatEndsNormallyDeliversOneEnd() {
        var machine = Machine()
        #expect(machine.isStreaming)
        check(machine.attach("a"), true)
        #expect(machine.isStreaming)
        check(ended(machine.end(nil)), "end")
        #expect(!machine.isStreaming)
        // The channel's close reports a failure afterwards: nothing more.
        check(ended(machine.end(UpstreamError(.connectionClosed, "closed"))), "nothing")
        check(machine.cancel(UpstreamError(.connectionClosed, "cancelled")), nil)
    }

    @Test func cancelWhileStreamingClosesTheConnectionAndItsErrorWins() {
        var machine = Machine()
        check(machine.attach("a"), true)
        check(machine.cancel(UpstreamError(.connectionClosed, "cancelled")), "a")
        #expect(!machine.isStreaming)
        // The close's failure arrives before the cancellation's own end: the end carries the
        // cancellation's error, once.
        check(ended(machine.end(UpstreamError(.connectionClosed, "upstream closed"))), "end: cancelled")
        check(ended(machine.end(UpstreamError(.connectionClosed, "cancelled"))), "nothing")
    }

    @Test func cancelWhileConnectingRefusesTheConnection() {
        var machine = Machine()
        check(machine.cancel(UpstreamError(.shutdown, "shut down")), nil)
        check(machine.attach("a"), false)
        check(ended(machine.end(UpstreamError(.shutdown, "shut down"))), "end: shut down")
    }

    @Test func onlyTheFirstCancelCounts() {
        var machine = Machine()
        check(machine.attach("a"), true)
        check(machine.cancel(UpstreamError(.connectionClosed, "first")), "a")
        check(machine.cancel(UpstreamError(.shutdown, "second")), nil)
        check(ended(machine.end(UpstreamError(.shutdown, "second"))), "end: first")
    }

    @Test func failedConnectEndsTheStreamAndALateAttachIsRefused() {
        var machine = Machine()
        check(ended(machine.end(UpstreamError(.connectFailed, "refused"))), "end: refused")
        check(machine.attach("a"), false)
        check(machine.cancel(UpstreamError(.connectionClosed, "cancelled")), nil)
        check(ended(machine.end(nil)), "nothing")
    }
}

/// An end action in words: `nothing`, `end` (normal), or `end: <error>`.
private func ended(_ action: UpstreamStreamStateMachine<String>.EndAction) -> String {
    switch action {
    case .none: "nothing"
    case .deliver(nil): "end"
    case .deliver(let error?): "end: \(error)"
    }
}

/// `#expect` cannot wrap a mutating call; this evaluates it first.
private func check<T: Equatable>(_ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual == expected, sourceLocation: sourceLocation)
}
