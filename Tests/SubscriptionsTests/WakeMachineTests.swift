import DurableStreams
import Subscriptions
import Testing

private func offset(_ position: UInt64) -> StreamOffset { StreamOffset(position: position) }
private let oneSecond: UInt64 = 1_000_000_000

@Suite("Subscriptions: the wake state machine (§7)")
struct WakeMachineTests {
    private func webhook() -> WakeMachine { WakeMachine(kind: .webhook, leaseNanos: 30 * oneSecond, salt: "s") }
    private func pull() -> WakeMachine { WakeMachine(kind: .pullWake(wakeStream: "wake/pool"), leaseNanos: 30 * oneSecond, salt: "s") }

    @Test func linkingAtTheTailIsNotPendingWork() {
        var machine = webhook()
        #expect(machine.link("a", explicit: true, acked: offset(5), tail: offset(5), now: 0).isEmpty)
        #expect(!machine.hasPending)
        #expect(machine.wake == nil)
    }

    @Test func anAppendWakesAnIdleWebhookSubscriptionWithASnapshot() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: offset(5), tail: offset(5), now: 0)
        let actions = machine.advanced("a", tail: offset(9), now: 10)
        let wake = try #require(machine.wake)
        #expect(wake.generation == 1)
        #expect(wake.snapshot == ["a": offset(9)])
        #expect(actions == [.deliver(wake), .schedule(at: 10 + 30 * oneSecond)])
        // One wake in flight: more data issues nothing new.
        #expect(machine.advanced("a", tail: offset(12), now: 11).isEmpty)
        #expect(machine.wake?.generation == 1)
    }

    @Test func aWakeListsOnlyStreamsWithWork() throws {
        var machine = webhook()
        _ = machine.link("idle", explicit: true, acked: offset(3), tail: offset(3), now: 0)
        _ = machine.link("busy", explicit: true, acked: offset(1), tail: offset(1), now: 0)
        _ = machine.advanced("busy", tail: offset(2), now: 1)
        #expect(try #require(machine.wake).snapshot == ["busy": offset(2)])
    }

    @Test func aStreamCreatedWithDataIsPendingFromItsBeginning() {
        var machine = webhook()
        let actions = machine.link("new", explicit: false, acked: .zero, tail: offset(3), now: 0)
        #expect(machine.links["new"]?.linkType == "glob")
        #expect(actions.count == 2)
    }

    @Test func doneAcksTheSnapshotAndWakesAgainForLaterData() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(4), now: 1)
        let first = try #require(machine.wake)
        _ = machine.advanced("a", tail: offset(6), now: 2)
        let actions = machine.delivered(first.id, done: true, now: 3)
        #expect(machine.links["a"]?.acked == offset(4))
        let second = try #require(machine.wake)
        #expect(second.generation == 2 && second.id != first.id)
        #expect(second.snapshot == ["a": offset(6)])
        #expect(actions.first == .deliver(second))
    }

    @Test func anAnswerWithoutDoneKeepsTheLeaseUntilCallbacksEndIt() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(4), now: 0)
        let wake = try #require(machine.wake)
        #expect(machine.delivered(wake.id, done: false, now: 1).isEmpty)
        #expect(machine.wake == wake)
        // A heartbeat-style callback extends the lease.
        let extended = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [("a", offset(2))], done: false, now: 5 * oneSecond)
        #expect(extended.actions == [.schedule(at: 35 * oneSecond)])
        #expect(machine.links["a"]?.acked == offset(2))
        let finished = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [("a", offset(4))], done: true, now: 6 * oneSecond)
        #expect(finished == .init(nextWake: false, actions: []))
        #expect(machine.wake == nil)
    }

    @Test func staleGenerationsWakeIdsAndTokensAreFenced() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(4), now: 0)
        let wake = try #require(machine.wake)
        let cases: [(String, Int, Int)] = [("w_other", 1, 1), (wake.id, 2, 2), (wake.id, 1, 0), (wake.id, 0, 1)]
        for (id, generation, tokenGeneration) in cases {
            #expect(throws: SubscriptionError.self) {
                try machine.acknowledge(wakeID: id, generation: generation, tokenGeneration: tokenGeneration, acks: [("a", offset(4))], done: true, now: 1)
            }
            #expect(machine.links["a"]?.acked == .zero, "a fenced request moves no cursor")
        }
        _ = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [("a", offset(4))], done: true, now: 1)
        do {
            _ = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [("a", offset(4))], done: true, now: 2)
            Issue.record("a repeated done must be fenced")
        } catch {
            #expect(error.code == "FENCED" && error.status == 409)
        }
    }

    @Test func badAcksChangeNothing() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: offset(2), tail: offset(2), now: 0)
        _ = machine.link("b", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(8), now: 0)
        let wake = try #require(machine.wake)
        for acks in [[("a", offset(9))], [("a", offset(1))], [("zzz", offset(1))], [("a", offset(5)), ("b", offset(1))]] {
            do {
                _ = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: acks, done: true, now: 1)
                Issue.record("accepted \(acks)")
            } catch {
                #expect(error.code == "INVALID_OFFSET")
            }
            #expect(machine.links["a"]?.acked == offset(2), "all acks or none")
            #expect(machine.wake == wake)
        }
    }

    @Test func anExpiredLeaseDropsTheWakeAndPendingWorkWakesAgain() throws {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(4), now: 0)
        let first = try #require(machine.wake)
        #expect(machine.tick(now: 29 * oneSecond).isEmpty)
        let actions = machine.tick(now: 30 * oneSecond)
        let second = try #require(machine.wake)
        #expect(second.generation == first.generation + 1)
        #expect(actions.first == .deliver(second))
        #expect(throws: SubscriptionError.self) {
            try machine.acknowledge(wakeID: first.id, generation: first.generation, tokenGeneration: first.generation, acks: [], done: true, now: 31 * oneSecond)
        }
    }

    @Test func failedDeliveriesBackOffWithJitterUpToAMinute() throws {
        #expect(WakeMachine.retryDelay(failures: 1, jitter: 0) == oneSecond)
        #expect(WakeMachine.retryDelay(failures: 2, jitter: 0) == 2 * oneSecond)
        #expect(WakeMachine.retryDelay(failures: 7, jitter: 0) == 60 * oneSecond)
        #expect(WakeMachine.retryDelay(failures: 50, jitter: 0.2) == 72 * oneSecond)
        #expect(WakeMachine.retryDelay(failures: 1, jitter: -0.2) == 800_000_000)
        #expect(WakeMachine.retryDelay(failures: 1, jitter: 5) == 1_200_000_000, "jitter is clamped to ±20 %")

        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: .zero, tail: .zero, now: 0)
        _ = machine.advanced("a", tail: offset(4), now: 0)
        let wake = try #require(machine.wake)
        #expect(machine.deliveryFailed(wake.id, now: 10, jitter: 0) == [.schedule(at: 10 + oneSecond)])
        #expect(machine.status == "failed")
        #expect(machine.wake == nil)
        // Data arriving during the back-off waits for it.
        #expect(machine.advanced("a", tail: offset(5), now: 20).isEmpty)
        #expect(machine.tick(now: 10 + oneSecond - 1).isEmpty)
        let retried = machine.tick(now: 10 + oneSecond)
        let again = try #require(machine.wake)
        #expect(retried.first == .deliver(again))
        #expect(machine.status == "failed", "failed until a delivery succeeds")
        #expect(machine.deliveryFailed(again.id, now: 2 * oneSecond, jitter: 0) == [.schedule(at: 4 * oneSecond)])
        _ = machine.tick(now: 4 * oneSecond)
        _ = machine.delivered(try #require(machine.wake).id, done: false, now: 5 * oneSecond)
        #expect(machine.status == "active")
    }

    @Test func pullWakePublishesClaimsAcksAndReleases() throws {
        var machine = pull()
        _ = machine.link("e/a", explicit: false, acked: .zero, tail: .zero, now: 0)
        let published = machine.advanced("e/a", tail: offset(3), now: 0)
        let wake = try #require(machine.wake)
        #expect(published == [.publish(wake, stream: "e/a")])
        #expect(wake.leaseDeadline == nil, "the lease starts at the claim")
        #expect(throws: SubscriptionError.self) {
            try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [], done: true, now: 1)
        }

        let (claimed, actions) = try machine.claim(worker: "w1", now: 100)
        #expect(claimed.holder == "w1" && claimed.id == wake.id)
        #expect(actions == [.schedule(at: 100 + 30 * oneSecond)])
        do {
            _ = try machine.claim(worker: "w2", now: 101)
            Issue.record("a second claim must be refused")
        } catch {
            #expect(error.code == "ALREADY_CLAIMED")
            #expect(error.details["current_holder"] == .string("w1"))
            #expect(error.details["generation"] == .int(1))
        }
        let heartbeat = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [], done: false, now: 10 * oneSecond)
        #expect(heartbeat.actions == [.schedule(at: 40 * oneSecond)])
        let done = try machine.acknowledge(wakeID: wake.id, generation: 1, tokenGeneration: 1, acks: [("e/a", offset(3))], done: true, now: 11 * oneSecond)
        #expect(done == .init(nextWake: false, actions: []))

        #expect(throws: SubscriptionError.self) { try machine.claim(worker: "w1", now: 12 * oneSecond) }
        _ = machine.advanced("e/a", tail: offset(5), now: 13 * oneSecond)
        let (second, _) = try machine.claim(worker: "w1", now: 14 * oneSecond)
        #expect(second.generation == 2)
        // Releasing with work left issues the next wake, published for another claim.
        let released = try machine.release(wakeID: second.id, generation: 2, tokenGeneration: 2, now: 15 * oneSecond)
        let third = try #require(machine.wake)
        #expect(third.generation == 3 && third.holder == nil)
        #expect(released == [.publish(third, stream: "e/a")])
        #expect(throws: SubscriptionError.self) { try machine.release(wakeID: second.id, generation: 2, tokenGeneration: 2, now: 16 * oneSecond) }
    }

    @Test func claimsNeedPendingWorkAndAPullWakeSubscription() {
        var machine = pull()
        _ = machine.link("e/a", explicit: true, acked: offset(2), tail: offset(2), now: 0)
        do {
            _ = try machine.claim(worker: "w", now: 0)
            Issue.record("nothing is pending")
        } catch {
            #expect(error.code == "NO_PENDING_WORK" && error.status == 409)
        }
        var hook = webhook()
        _ = hook.link("e/a", explicit: true, acked: .zero, tail: offset(2), now: 0)
        #expect(throws: SubscriptionError.self) { try hook.claim(worker: "w", now: 0) }
    }

    @Test func explicitAndGlobLinksAreKeptApart() {
        var machine = webhook()
        _ = machine.link("a", explicit: false, acked: offset(1), tail: offset(1), now: 0)
        _ = machine.link("a", explicit: true, acked: .zero, tail: offset(1), now: 0)
        #expect(machine.links["a"] == StreamLink(explicit: true, glob: true, acked: offset(1), tail: offset(1)))
        machine.unlinkExplicit("a")
        #expect(machine.links["a"]?.linkType == "glob")
        _ = machine.link("b", explicit: true, acked: .zero, tail: .zero, now: 0)
        machine.unlinkExplicit("b")
        #expect(machine.links["b"] == nil)
        machine.unlinkExplicit("absent")
    }

    @Test func aDeletedStreamStartsOverWhenMadeAgain() {
        var machine = webhook()
        _ = machine.link("a", explicit: true, acked: offset(7), tail: offset(7), now: 0)
        machine.streamDeleted("a")
        let actions = machine.advanced("a", tail: offset(2), now: 1)
        #expect(actions.count == 2)
        #expect(machine.wake?.snapshot == ["a": offset(2)])
    }
}
