import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("MemoryStore waitForChange and cancel")
struct WaitForChangeTests {
    @Test func aWaitAtTheTailCompletesOnAppend() throws {
        let h = StoreHarness()
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == nil)
        try h.append("d")
        #expect(h.outcome(box) == .changed)
        #expect(try h.read(from: .offset(offset(3))).text == "d")
    }

    @Test func aWaitCompletesOnClose() throws {
        let h = StoreHarness()
        try h.create()
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == nil)
        try h.close()
        #expect(h.outcome(box) == .changed)
    }

    @Test func aWaitCompletesOnAppendAndClose() throws {
        let h = StoreHarness()
        try h.create()
        let (_, box) = h.wait(after: .zero)
        try h.append("final", closed: true)
        #expect(h.outcome(box) == .changed)
    }

    @Test func aWaitCompletesOnDelete() throws {
        let h = StoreHarness()
        try h.create()
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == nil)
        try h.delete()
        #expect(h.outcome(box) == .changed)
    }

    @Test func everyWaiterOnTheStreamIsWoken() throws {
        let h = StoreHarness()
        try h.create()
        let boxes = (0..<5).map { _ in h.wait(after: .zero).1 }
        for box in boxes { #expect(h.outcome(box) == nil) }
        try h.append("x")
        for box in boxes { #expect(h.outcome(box) == .changed) }
    }

    @Test func completesImmediatelyWhenDataAlreadyExists() throws {
        let h = StoreHarness()
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(1))
        #expect(h.outcome(box) == .changed)
        let (_, fromZero) = h.wait(after: .zero)
        #expect(h.outcome(fromZero) == .changed)
    }

    @Test func completesImmediatelyOnAClosedStream() throws {
        let h = StoreHarness()
        try h.create(body: "abc")
        try h.close()
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == .changed)
    }

    @Test func completesImmediatelyForAMissingStream() {
        let h = StoreHarness()
        let (_, box) = h.wait("missing", after: .zero)
        #expect(h.outcome(box) == .changed)
    }

    @Test func completesImmediatelyForAnExpiredStream() throws {
        let h = StoreHarness()
        try h.create(lifetime: .ttl(seconds: 1))
        h.clock.advance(by: 1)
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == .changed)
    }

    @Test func cancelCompletesTheWaitAsCancelled() throws {
        let h = StoreHarness()
        try h.create()
        let (wait, box) = h.wait(after: .zero)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
        // A later append does not complete it a second time (OutcomeBox traps on that).
        try h.append("x")
        #expect(h.outcome(box) == .cancelled)
    }

    @Test func cancelOnlyAffectsItsOwnWait() throws {
        let h = StoreHarness()
        try h.create()
        let (first, firstBox) = h.wait(after: .zero)
        let (_, secondBox) = h.wait(after: .zero)
        h.store.cancel(first)
        #expect(h.outcome(firstBox) == .cancelled)
        #expect(h.outcome(secondBox) == nil)
        try h.append("x")
        #expect(h.outcome(secondBox) == .changed)
    }

    @Test func cancelAfterCompletionChangesNothing() throws {
        let h = StoreHarness()
        try h.create()
        let (wait, box) = h.wait(after: .zero)
        try h.append("x")
        #expect(h.outcome(box) == .changed)
        h.store.cancel(wait)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .changed)
    }

    @Test func cancelOfAnImmediatelyCompletedWaitChangesNothing() throws {
        let h = StoreHarness()
        let (wait, box) = h.wait("missing", after: .zero)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .changed)
    }

    @Test func waitsCarryTheirPathAndDistinctIDs() throws {
        let h = StoreHarness()
        try h.create("a")
        let (first, firstBox) = h.wait("a", after: .zero)
        let (second, secondBox) = h.wait("a", after: .zero)
        #expect(first.path == "a")
        #expect(first.id != second.id)
        h.store.cancel(first)
        h.store.cancel(second)
        #expect(h.outcome(firstBox) == .cancelled)
        #expect(h.outcome(secondBox) == .cancelled)
    }

    @Test func anAppendToAnotherStreamDoesNotWakeTheWait() throws {
        let h = StoreHarness()
        try h.create("a")
        try h.create("b")
        let (wait, box) = h.wait("a", after: .zero)
        try h.append("b", "x")
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test func aFailedAppendDoesNotWakeTheWait() throws {
        let h = StoreHarness()
        try h.create(type: "application/json")
        let (wait, box) = h.wait(after: .zero)
        _ = h.appendError("not json", type: "application/json")
        _ = h.appendError("{}", type: "text/plain")
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test func aDuplicateProducerAppendDoesNotWakeTheWait() throws {
        let h = StoreHarness()
        try h.create()
        try h.append("a", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        let (wait, box) = h.wait(after: offset(1))
        #expect(try h.append("a", producer: ProducerClaim(id: "p", epoch: 0, seq: 0)).duplicate)
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test func aReadDoesNotWakeTheWait() throws {
        let h = StoreHarness()
        try h.create(body: "abc")
        let (wait, box) = h.wait(after: offset(3))
        _ = try h.read()
        _ = try h.info()
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test func aWaitIsWokenOnceTheTailMovesPastItsOffset() throws {
        let h = StoreHarness()
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == nil)
        try h.append("def")
        #expect(h.outcome(box) == .changed)
        // A new wait at the old offset now completes at once.
        let (_, again) = h.wait(after: offset(3))
        #expect(h.outcome(again) == .changed)
    }

    @Test func expirySweepWakesWaiters() throws {
        let h = StoreHarness()
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        #expect(h.outcome(box) == nil)
        #expect(h.store.sweepExpired() == 1)
        #expect(h.outcome(box) == .changed)
    }

    @Test func lazyExpiryOnAccessWakesWaiters() throws {
        let h = StoreHarness()
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        #expect(h.infoError()?.status == .notFound)
        #expect(h.outcome(box) == .changed)
    }

    @Test func recreatingAnExpiredPathWakesTheOldWaiters() throws {
        let h = StoreHarness()
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        try h.create()
        #expect(h.outcome(box) == .changed)
    }
}
