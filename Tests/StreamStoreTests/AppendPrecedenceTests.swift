import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

/// §5.2's error precedence: closed, then content type, then producer, then Stream-Seq, then the
/// body's JSON framing. Each test arranges for several failures at once and checks which wins,
/// then that nothing changed.
@Suite("MemoryStore append error precedence")
struct AppendPrecedenceTests {
    /// A JSON stream holding one message, with Stream-Seq "5" recorded and producer "p" at (1, 0).
    private func prepared() throws -> StoreHarness {
        let h = StoreHarness()
        try h.create(type: "application/json")
        try h.append("1", type: "application/json", seq: "5", producer: ProducerClaim(id: "p", epoch: 1, seq: 0))
        return h
    }

    @Test func closedBeatsEverything() throws {
        let h = try prepared()
        try h.close()
        let tail = try h.info().tail
        // Wrong content type, stale producer, seq regression and invalid JSON all at once.
        let error = h.appendError("{bad", type: "text/plain", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
        #expect(error?.header(HeaderName.nextOffset) == tail.description)
    }

    @Test func contentTypeBeatsProducerSeqAndFraming() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "text/plain", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == nil)
        #expect(error?.header(HeaderName.producerEpoch) == nil)
        #expect(error?.reason.contains("content type") == true)
    }

    @Test func staleProducerBeatsSeqAndFraming() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .forbidden)
        #expect(error?.header(HeaderName.producerEpoch) == "1")
    }

    @Test func producerGapBeatsSeqAndFraming() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 1, seq: 3))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.producerExpectedSeq) == "1")
        #expect(error?.header(HeaderName.producerReceivedSeq) == "3")
    }

    @Test func newEpochNotAtZeroBeatsSeqAndFraming() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 2, seq: 1))
        #expect(error?.status == .badRequest)
        #expect(error?.reason.contains("epoch") == true)
    }

    @Test func producerDuplicateBeatsSeqRegressionAndFraming() throws {
        let h = try prepared()
        // The retry of an applied request succeeds as a duplicate even though its Stream-Seq no
        // longer increases and its body is different (and not even JSON).
        let result = try h.append("{bad", type: "application/json", seq: "5", producer: ProducerClaim(id: "p", epoch: 1, seq: 0))
        #expect(result.duplicate)
        #expect(result.producer == ProducerState(epoch: 1, lastSeq: 0))
        #expect(try h.text() == "1,")
    }

    @Test func seqRegressionBeatsFraming() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "application/json", seq: "4")
        #expect(error?.status == .conflict)
        #expect(error?.reason.contains("Stream-Seq") == true)
    }

    @Test func framingIsCheckedLast() throws {
        let h = try prepared()
        let error = h.appendError("{bad", type: "application/json", seq: "6", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        #expect(error?.status == .badRequest)
        #expect(error?.reason.contains("JSON") == true)
    }

    @Test func nothingChangesWhenAnyCheckFails() throws {
        let h = try prepared()
        _ = h.appendError("2", type: "text/plain", seq: "6", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        _ = h.appendError("2", type: "application/json", seq: "4", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        _ = h.appendError("{bad", type: "application/json", seq: "6", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        #expect(try h.text() == "1,")
        // Neither the Stream-Seq nor the producer's sequence moved: (1,1) with seq "6" is still next.
        let result = try h.append("2", type: "application/json", seq: "6", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        #expect(!result.duplicate)
        #expect(result.producer == ProducerState(epoch: 1, lastSeq: 1))
        #expect(try h.text() == "1,2,")
    }
}
