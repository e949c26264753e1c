import DurableStreams
import Foundation
import Testing

@Suite("CursorPolicy interval arithmetic and jitter")
struct CursorPolicyTests {
    let policy = CursorPolicy()

    @Test func defaultsMatchTheProtocol() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let epoch = try #require(formatter.date(from: "2024-10-09T00:00:00Z"))
        #expect(CursorPolicy.defaultEpoch == epoch.timeIntervalSince1970)
        #expect(policy.epoch == CursorPolicy.defaultEpoch)
        #expect(policy.intervalSeconds == 20)
        #expect(CursorPolicy.jitterSeconds == 1...3600)
    }

    @Test func intervalCountsWholeIntervalsSinceTheEpoch() {
        let epoch = CursorPolicy.defaultEpoch
        #expect(policy.interval(at: epoch) == 0)
        #expect(policy.interval(at: epoch + 19.999) == 0)
        #expect(policy.interval(at: epoch + 20) == 1)
        #expect(policy.interval(at: epoch + 39.9) == 1)
        #expect(policy.interval(at: epoch + 40) == 2)
        #expect(policy.interval(at: epoch + 20_000) == 1000)
    }

    @Test func intervalBeforeTheEpochIsZero() {
        #expect(policy.interval(at: 0) == 0)
        #expect(policy.interval(at: CursorPolicy.defaultEpoch - 1) == 0)
        #expect(policy.interval(at: -1_000_000) == 0)
    }

    @Test func customEpochAndInterval() {
        let custom = CursorPolicy(epoch: 1000, intervalSeconds: 7)
        #expect(custom.interval(at: 1000) == 0)
        #expect(custom.interval(at: 1006.9) == 0)
        #expect(custom.interval(at: 1007) == 1)
        #expect(custom.interval(at: 1070) == 10)
    }

    @Test func withoutAClientCursorTheCurrentIntervalIsReturned() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000 + 5
        var jitterCalls = 0
        let cursor = policy.nextCursor(after: nil, now: now, jitter: { jitterCalls += 1; return 3600 })
        #expect(cursor == 1000)
        #expect(jitterCalls == 0)
    }

    @Test(arguments: ["", "abc", "-5", "12a", "1.5", " 1000", "0x10", "１０００"])
    func nonNumericClientCursorsAreIgnored(text: String) {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        #expect(policy.nextCursor(after: Substring(text), now: now, jitter: { 3600 }) == 1000)
    }

    @Test(arguments: [UInt64(0), 1, 500, 998, 999])
    func behindTheClockCursorsYieldTheCurrentInterval(client: UInt64) {
        let now = CursorPolicy.defaultEpoch + 20 * 1000 + 3
        for jitter in [1, 20, 1800, 3600] {
            #expect(policy.nextCursor(after: Substring(String(client)), now: now, jitter: { jitter }) == 1000)
        }
    }

    @Test func cursorEqualToTheCurrentIntervalAdvancesByCeilOfJitterOverInterval() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        func next(_ jitter: Int) -> UInt64 { policy.nextCursor(after: "1000", now: now, jitter: { jitter }) }
        #expect(next(1) == 1001)
        #expect(next(19) == 1001)
        #expect(next(20) == 1001)
        #expect(next(21) == 1002)
        #expect(next(40) == 1002)
        #expect(next(41) == 1003)
        #expect(next(3600) == 1180)
    }

    @Test func jitterOutsideTheRangeIsClamped() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        #expect(policy.nextCursor(after: "1000", now: now, jitter: { 0 }) == 1001)
        #expect(policy.nextCursor(after: "1000", now: now, jitter: { -50 }) == 1001)
        #expect(policy.nextCursor(after: "1000", now: now, jitter: { Int.min }) == 1001)
        #expect(policy.nextCursor(after: "1000", now: now, jitter: { 100_000 }) == 1180)
        #expect(policy.nextCursor(after: "1000", now: now, jitter: { Int.max }) == 1180)
    }

    @Test func aCursorAheadOfTheClockStillAdvances() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        #expect(policy.nextCursor(after: "5000", now: now, jitter: { 1 }) == 5001)
        #expect(policy.nextCursor(after: "5000", now: now, jitter: { 3600 }) == 5180)
    }

    @Test func theJitterClosureIsConsultedOnlyWhenAdvancing() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        var calls = 0
        _ = policy.nextCursor(after: "999", now: now, jitter: { calls += 1; return 1 })
        #expect(calls == 0)
        _ = policy.nextCursor(after: "1000", now: now, jitter: { calls += 1; return 1 })
        #expect(calls == 1)
    }

    /// For every jitter the default generator can draw, and several interval lengths, a cursor at
    /// or beyond the clock yields a strictly larger cursor bounded by client + ceil(3600/interval).
    @Test(arguments: [0.5, 1.0, 7.0, 20.0, 60.0, 3599.0, 3600.0, 7200.0])
    func strictlyLargerAndBounded(intervalSeconds: Double) {
        let custom = CursorPolicy(epoch: 1_000_000, intervalSeconds: intervalSeconds)
        let now = 1_000_000 + intervalSeconds * 5000
        let current = custom.interval(at: now)
        #expect(current == 5000)
        let maxSteps = UInt64((3600 / intervalSeconds).rounded(.up))
        for client in [current, current + 1, current + 12_345] {
            var seen = Set<UInt64>()
            for jitter in CursorPolicy.jitterSeconds {
                let next = custom.nextCursor(after: Substring(String(client)), now: now, jitter: { jitter })
                #expect(next > client)
                #expect(next <= client + max(1, maxSteps))
                seen.insert(next)
            }
            // The jitter actually spreads the cursors out: every step count up to the bound is drawn.
            #expect(seen.count == min(CursorPolicy.jitterSeconds.count, Int(maxSteps)))
        }
    }

    @Test func defaultJitterKeepsTheGuarantees() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        for _ in 0..<500 {
            let next = policy.nextCursor(after: "1000", now: now)
            #expect(next > 1000)
            #expect(next <= 1180)
        }
    }

    @Test func theLargestCursorDoesNotOverflow() {
        let now = CursorPolicy.defaultEpoch + 20 * 1000
        let next = policy.nextCursor(after: Substring(String(UInt64.max)), now: now, jitter: { 3600 })
        #expect(next >= 1000)
    }

    @Test func aSharedAnswerKeepsTheUpstreamCursorWhenItIsAhead() {
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1000", client: "990") == "1000")
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1000", client: nil) == "1000")
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1000", client: "junk") == "1000")
    }

    @Test func aSharedAnswerMovesAClientAtOrPastTheUpstreamCursorForward() {
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1000", client: "1000") == "1001")
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1000", client: "5000") == "5001")
    }

    @Test func aSharedAnswerLeavesOddCursorsAlone() {
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "opaque", client: "5") == "opaque")
        #expect(CursorPolicy.sharedAnswerCursor(upstream: "1", client: "18446744073709551615") == "18446744073709551615")
    }
}
