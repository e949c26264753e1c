import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: waitForChange and cancel")
struct WaitForChangeTests {
    @Test(arguments: StoreBackend.all) func aWaitAtTheTailCompletesOnAppend(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == nil)
        try h.append("d")
        #expect(h.outcome(box) == .changed)
        #expect(try h.read(from: .offset(offset(3))).text == "d")
    }

    @Test(arguments: StoreBackend.all) func aWaitCompletesOnClose(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == nil)
        try h.close()
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func aWaitCompletesOnAppendAndClose(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (_, box) = h.wait(after: .zero)
        try h.append("final", closed: true)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func aWaitCompletesOnDelete(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == nil)
        try h.delete()
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func everyWaiterOnTheStreamIsWoken(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let boxes = (0..<5).map { _ in h.wait(after: .zero).1 }
        for box in boxes { #expect(h.outcome(box) == nil) }
        try h.append("x")
        for box in boxes { #expect(h.outcome(box) == .changed) }
    }

    @Test(arguments: StoreBackend.all) func completesImmediatelyWhenDataAlreadyExists(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(1))
        #expect(h.outcome(box) == .changed)
        let (_, fromZero) = h.wait(after: .zero)
        #expect(h.outcome(fromZero) == .changed)
    }

    @Test(arguments: StoreBackend.all) func completesImmediatelyOnAClosedStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        try h.close()
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func completesImmediatelyForAMissingStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let (_, box) = h.wait("missing", after: .zero)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func completesImmediatelyForAnExpiredStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 1))
        h.clock.advance(by: 1)
        let (_, box) = h.wait(after: .zero)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func cancelCompletesTheWaitAsCancelled(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (wait, box) = h.wait(after: .zero)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
        // A later append does not complete it a second time (OutcomeBox traps on that).
        try h.append("x")
        #expect(h.outcome(box) == .cancelled)
    }

    @Test(arguments: StoreBackend.all) func cancelOnlyAffectsItsOwnWait(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (first, firstBox) = h.wait(after: .zero)
        let (_, secondBox) = h.wait(after: .zero)
        h.store.cancel(first)
        #expect(h.outcome(firstBox) == .cancelled)
        #expect(h.outcome(secondBox) == nil)
        try h.append("x")
        #expect(h.outcome(secondBox) == .changed)
    }

    @Test(arguments: StoreBackend.all) func cancelAfterCompletionChangesNothing(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let (wait, box) = h.wait(after: .zero)
        try h.append("x")
        #expect(h.outcome(box) == .changed)
        h.store.cancel(wait)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func cancelOfAnImmediatelyCompletedWaitChangesNothing(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let (wait, box) = h.wait("missing", after: .zero)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func waitsCarryTheirPathAndDistinctIDs(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
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

    @Test(arguments: StoreBackend.all) func anAppendToAnotherStreamDoesNotWakeTheWait(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a")
        try h.create("b")
        let (wait, box) = h.wait("a", after: .zero)
        try h.append("b", "x")
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test(arguments: StoreBackend.all) func aFailedAppendDoesNotWakeTheWait(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        let (wait, box) = h.wait(after: .zero)
        _ = h.appendError("not json", type: "application/json")
        _ = h.appendError("{}", type: "text/plain")
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test(arguments: StoreBackend.all) func aDuplicateProducerAppendDoesNotWakeTheWait(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        let (wait, box) = h.wait(after: offset(1))
        #expect(try h.append("a", producer: ProducerClaim(id: "p", epoch: 0, seq: 0)).duplicate)
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test(arguments: StoreBackend.all) func aReadDoesNotWakeTheWait(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let (wait, box) = h.wait(after: offset(3))
        _ = try h.read()
        _ = try h.info()
        #expect(h.outcome(box) == nil)
        h.store.cancel(wait)
        #expect(h.outcome(box) == .cancelled)
    }

    @Test(arguments: StoreBackend.all) func aWaitIsWokenOnceTheTailMovesPastItsOffset(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let (_, box) = h.wait(after: offset(3))
        #expect(h.outcome(box) == nil)
        try h.append("def")
        #expect(h.outcome(box) == .changed)
        // A new wait at the old offset now completes at once.
        let (_, again) = h.wait(after: offset(3))
        #expect(h.outcome(again) == .changed)
    }

    @Test(arguments: StoreBackend.all) func expirySweepWakesWaiters(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        #expect(h.outcome(box) == nil)
        #expect(try h.sweep() == 1)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func lazyExpiryOnAccessWakesWaiters(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        #expect(h.infoError()?.status == .notFound)
        #expect(h.outcome(box) == .changed)
    }

    @Test(arguments: StoreBackend.all) func recreatingAnExpiredPathWakesTheOldWaiters(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 10))
        let (_, box) = h.wait(after: .zero)
        h.clock.advance(by: 10)
        try h.create()
        #expect(h.outcome(box) == .changed)
    }
}
