import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

/// §5.2's error precedence: closed, then content type, then producer, then Stream-Seq, then the
/// body's JSON framing. Each test arranges for several failures at once and checks which wins,
/// then that nothing changed.
@Suite("Store contract: append error precedence")
struct AppendPrecedenceTests {
    /// A JSON stream holding one message, with Stream-Seq "5" recorded and producer "p" at (1, 0).
    private func prepared(_ backend: StoreBackend) throws -> StoreHarness {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        try h.append("1", type: "application/json", seq: "5", producer: ProducerClaim(id: "p", epoch: 1, seq: 0))
        return h
    }

    @Test(arguments: StoreBackend.all) func closedBeatsEverything(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        try h.close()
        let tail = try h.info().tail
        // Wrong content type, stale producer, seq regression and invalid JSON all at once.
        let error = h.appendError("{bad", type: "text/plain", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
        #expect(error?.header(HeaderName.nextOffset) == tail.description)
    }

    @Test(arguments: StoreBackend.all) func contentTypeBeatsProducerSeqAndFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "text/plain", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == nil)
        #expect(error?.header(HeaderName.producerEpoch) == nil)
        #expect(error?.reason.contains("content type") == true)
    }

    @Test(arguments: StoreBackend.all) func staleProducerBeatsSeqAndFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(error?.status == .forbidden)
        #expect(error?.header(HeaderName.producerEpoch) == "1")
    }

    @Test(arguments: StoreBackend.all) func producerGapBeatsSeqAndFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 1, seq: 3))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.producerExpectedSeq) == "1")
        #expect(error?.header(HeaderName.producerReceivedSeq) == "3")
    }

    @Test(arguments: StoreBackend.all) func newEpochNotAtZeroBeatsSeqAndFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "application/json", seq: "1", producer: ProducerClaim(id: "p", epoch: 2, seq: 1))
        #expect(error?.status == .badRequest)
        #expect(error?.reason.contains("epoch") == true)
    }

    @Test(arguments: StoreBackend.all) func producerDuplicateBeatsSeqRegressionAndFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        // The retry of an applied request succeeds as a duplicate even though its Stream-Seq no
        // longer increases and its body is different (and not even JSON).
        let result = try h.append("{bad", type: "application/json", seq: "5", producer: ProducerClaim(id: "p", epoch: 1, seq: 0))
        #expect(result.duplicate)
        #expect(result.producer == ProducerState(epoch: 1, lastSeq: 0))
        #expect(try h.text() == "1,")
    }

    @Test(arguments: StoreBackend.all) func seqRegressionBeatsFraming(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "application/json", seq: "4")
        #expect(error?.status == .conflict)
        #expect(error?.reason.contains("Stream-Seq") == true)
    }

    @Test(arguments: StoreBackend.all) func framingIsCheckedLast(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
        let error = h.appendError("{bad", type: "application/json", seq: "6", producer: ProducerClaim(id: "p", epoch: 1, seq: 1))
        #expect(error?.status == .badRequest)
        #expect(error?.reason.contains("JSON") == true)
    }

    @Test(arguments: StoreBackend.all) func nothingChangesWhenAnyCheckFails(_ backend: StoreBackend) throws {
        let h = try prepared(backend)
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
