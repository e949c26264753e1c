import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: idempotent producers (§5.2.1)")
struct IdempotentProducerTests {
    private func claim(_ epoch: UInt64, _ seq: UInt64, id: String = "p") -> ProducerClaim {
        ProducerClaim(id: id, epoch: epoch, seq: seq)
    }

    @Test(arguments: StoreBackend.all) func firstAppendIsAccepted(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let result = try h.append("a", producer: claim(0, 0))
        #expect(!result.duplicate)
        #expect(result.producer == ProducerState(epoch: 0, lastSeq: 0))
        #expect(result.tail == offset(1))
    }

    @Test(arguments: StoreBackend.all) func aNewProducerMayStartAtAnyEpoch(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        #expect(try h.append("a", producer: claim(2, 0)).producer == ProducerState(epoch: 2, lastSeq: 0))
    }

    @Test(arguments: StoreBackend.all) func duplicateIsAcknowledgedWithoutAppending(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let first = try h.append("a", producer: claim(0, 0))
        let retry = try h.append("a", producer: claim(0, 0))
        #expect(retry.duplicate)
        #expect(retry.tail == first.tail)
        #expect(retry.producer == ProducerState(epoch: 0, lastSeq: 0))
        #expect(try h.text() == "a")
    }

    @Test(arguments: StoreBackend.all) func duplicateReportsTheHighestAcceptedSeq(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("0", producer: claim(0, 0))
        try h.append("1", producer: claim(0, 1))
        try h.append("2", producer: claim(0, 2))
        let retry = try h.append("1", producer: claim(0, 1))
        #expect(retry.duplicate)
        #expect(retry.producer == ProducerState(epoch: 0, lastSeq: 2))
        #expect(try h.text() == "012")
    }

    @Test(arguments: StoreBackend.all) func duplicateWithADifferentBodyKeepsTheOriginal(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("original", producer: claim(0, 0))
        #expect(try h.append("changed", producer: claim(0, 0)).duplicate)
        #expect(try h.text() == "original")
    }

    @Test(arguments: StoreBackend.all) func gapIsAConflictWithExpectedAndReceived(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("0", producer: claim(0, 0))
        let error = try #require(h.appendError("2", producer: claim(0, 2)))
        #expect(error.status == .conflict)
        #expect(error.header(HeaderName.producerExpectedSeq) == "1")
        #expect(error.header(HeaderName.producerReceivedSeq) == "2")
        #expect(try h.text() == "0")
        // The gap can be filled.
        #expect(try h.append("1", producer: claim(0, 1)).producer == ProducerState(epoch: 0, lastSeq: 1))
        #expect(try h.append("2", producer: claim(0, 2)).producer == ProducerState(epoch: 0, lastSeq: 2))
        #expect(try h.text() == "012")
    }

    @Test(arguments: StoreBackend.all) func unknownProducerNotStartingAtZeroIsAGap(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let error = try #require(h.appendError("x", producer: claim(0, 5)))
        #expect(error.status == .conflict)
        #expect(error.header(HeaderName.producerExpectedSeq) == "0")
        #expect(error.header(HeaderName.producerReceivedSeq) == "5")
    }

    @Test(arguments: StoreBackend.all) func staleEpochIsForbiddenWithTheCurrentEpoch(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: claim(0, 0))
        try h.append("b", producer: claim(1, 0))
        let error = try #require(h.appendError("zombie", producer: claim(0, 1)))
        #expect(error.status == .forbidden)
        #expect(error.header(HeaderName.producerEpoch) == "1")
        #expect(try h.text() == "ab")
    }

    @Test(arguments: StoreBackend.all) func epochsMaySkipButANewEpochMustStartAtZero(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: claim(0, 0))
        #expect(h.appendError("b", producer: claim(1, 5))?.status == .badRequest)
        #expect(try h.append("c", producer: claim(10, 0)).producer == ProducerState(epoch: 10, lastSeq: 0))
        #expect(try h.text() == "ac")
    }

    @Test(arguments: StoreBackend.all) func stateIsPerProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("A0", producer: claim(0, 0, id: "A"))
        try h.append("B0", producer: claim(0, 0, id: "B"))
        try h.append("A1", producer: claim(0, 1, id: "A"))
        try h.append("B1", producer: claim(0, 1, id: "B"))
        #expect(try h.text() == "A0B0A1B1")
    }

    @Test(arguments: StoreBackend.all) func stateIsPerStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("one")
        try h.create("two")
        try h.append("one", "x", producer: claim(0, 0))
        try h.append("one", "y", producer: claim(0, 1))
        // The same producer is new on the other stream.
        let other = try h.append("two", "z", producer: claim(0, 0))
        #expect(!other.duplicate)
    }

    @Test(arguments: StoreBackend.all) func stateIsForgottenWhenTheStreamIsRecreated(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: claim(0, 0))
        try h.delete()
        try h.create()
        #expect(try h.append("a", producer: claim(0, 0)).duplicate == false)
    }

    // MARK: Failed appends do not advance producer state

    @Test(arguments: StoreBackend.all) func invalidJSONDoesNotAdvanceTheProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        #expect(h.appendError("{ invalid", type: "application/json", producer: claim(0, 0))?.status == .badRequest)
        let retry = try h.append("{\"ok\":true}", type: "application/json", producer: claim(0, 0))
        #expect(!retry.duplicate)
        #expect(try h.text() == "{\"ok\":true},")
    }

    @Test(arguments: StoreBackend.all) func emptyJSONArrayDoesNotAdvanceTheProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        #expect(h.appendError("[]", type: "application/json", producer: claim(0, 0))?.status == .badRequest)
        #expect(try h.append("[1]", type: "application/json", producer: claim(0, 0)).duplicate == false)
    }

    @Test(arguments: StoreBackend.all) func contentTypeMismatchDoesNotAdvanceTheProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain")
        #expect(h.appendError("{}", type: "application/json", producer: claim(0, 0))?.status == .conflict)
        #expect(try h.append("x", producer: claim(0, 0)).duplicate == false)
    }

    @Test(arguments: StoreBackend.all) func streamSeqRegressionDoesNotAdvanceTheProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", seq: "5", producer: claim(0, 0))
        #expect(h.appendError("b", seq: "3", producer: claim(0, 1))?.status == .conflict)
        let next = try h.append("b", seq: "6", producer: claim(0, 1))
        #expect(!next.duplicate)
        #expect(next.producer == ProducerState(epoch: 0, lastSeq: 1))
    }

    @Test(arguments: StoreBackend.all) func rejectedEpochBumpDoesNotAdvanceTheProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: claim(0, 0))
        _ = h.appendError("b", producer: claim(1, 3))
        // Still at epoch 0: (0, 1) is the next request, not stale.
        #expect(try h.append("b", producer: claim(0, 1)).producer == ProducerState(epoch: 0, lastSeq: 1))
    }

    @Test(arguments: StoreBackend.all) func duplicateDoesNotRecordItsStreamSeq(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", seq: "1", producer: claim(0, 0))
        #expect(try h.append("a", seq: "9", producer: claim(0, 0)).duplicate)
        // "2" would conflict if the duplicate had recorded "9".
        try h.append("b", seq: "2")
        #expect(try h.text() == "ab")
    }
}
