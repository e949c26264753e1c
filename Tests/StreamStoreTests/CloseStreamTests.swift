import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: closing streams")
struct CloseStreamTests {
    @Test(arguments: StoreBackend.all) func closeOnlyClosesWithoutData(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "data")
        let result = try h.close()
        #expect(result.closed)
        #expect(!result.duplicate)
        #expect(result.tail == offset(4))
        #expect(try h.info().closed)
        #expect(try h.text() == "data")
    }

    @Test(arguments: StoreBackend.all) func closeIsIdempotent(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "data")
        let first = try h.close()
        let second = try h.close()
        #expect(second.closed)
        #expect(second.duplicate)
        #expect(second.tail == first.tail)
    }

    @Test(arguments: StoreBackend.all) func closeOnlyIgnoresTheContentType(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        let result = try h.appendBytes([], type: "text/plain", closed: true)
        #expect(result.closed)
    }

    @Test(arguments: StoreBackend.all) func appendAndCloseStoresTheFinalData(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let result = try h.append("final message", closed: true)
        #expect(result.closed)
        #expect(result.tail == offset(13))
        #expect(try h.text() == "final message")
        let read = try h.read()
        #expect(read.reachedClosedEnd)
    }

    @Test(arguments: StoreBackend.all) func appendingToAClosedStreamConflictsWithClosedHeaders(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let close = try h.close()
        let error = try #require(h.appendError("more"))
        #expect(error.status == .conflict)
        #expect(error.header(HeaderName.closed) == "true")
        #expect(error.header(HeaderName.nextOffset) == close.tail.description)
        #expect(try h.text() == "abc")
    }

    @Test(arguments: StoreBackend.all) func appendAndCloseOnAClosedStreamConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.close()
        let error = h.appendError("more", closed: true)
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
        #expect(error?.header(HeaderName.nextOffset) == StreamOffset.zero.description)
    }

    @Test(arguments: StoreBackend.all) func closedStreamConflictWinsOverContentTypeMismatch(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain")
        try h.close()
        let error = h.appendError("{}", type: "application/json")
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
    }

    @Test(arguments: StoreBackend.all) func createdClosedStreamRejectsAppends(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(closed: true, body: "x")
        let error = h.appendError("y")
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.nextOffset) == offset(1).description)
    }

    @Test(arguments: StoreBackend.all) func readsOfAClosedStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "hello")
        try h.close()
        let all = try h.read()
        #expect(all.info.closed)
        #expect(all.reachedClosedEnd)
        let atTail = try h.read(from: .offset(offset(5)))
        #expect(atTail.chunks.isEmpty)
        #expect(atTail.reachedClosedEnd)
        #expect(atTail.upToDate)
        let now = try h.read(from: .now)
        #expect(now.reachedClosedEnd)
        #expect(now.start == offset(5))
        let partial = try h.read(maxBytes: 2)
        #expect(partial.info.closed)
        #expect(!partial.reachedClosedEnd)
        #expect(!partial.upToDate)
    }

    // MARK: With producers

    @Test(arguments: StoreBackend.all) func appendAndCloseWithAProducer(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let result = try h.append("final", closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(result.closed)
        #expect(!result.duplicate)
        #expect(result.producer == ProducerState(epoch: 0, lastSeq: 0))
    }

    @Test(arguments: StoreBackend.all) func retryOfTheClosingRequestIsADuplicateEvenWithADifferentBody(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let closing = ProducerClaim(id: "p", epoch: 0, seq: 0)
        let first = try h.append("final", closed: true, producer: closing)
        let retry = try h.append("different", closed: true, producer: closing)
        #expect(retry.duplicate)
        #expect(retry.closed)
        #expect(retry.tail == first.tail)
        #expect(retry.producer == ProducerState(epoch: 0, lastSeq: 0))
        #expect(try h.text() == "final")
    }

    @Test(arguments: StoreBackend.all) func aDifferentProducerOnAClosedStreamConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("final", closed: true, producer: ProducerClaim(id: "A", epoch: 0, seq: 0))
        let error = h.appendError("should fail", closed: true, producer: ProducerClaim(id: "B", epoch: 0, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
    }

    @Test(arguments: StoreBackend.all) func theSameProducerWithADifferentSeqOnAClosedStreamConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("final", closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        let error = h.appendError("should fail", closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 1))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
    }

    @Test(arguments: StoreBackend.all) func aStaleProducerOnAClosedStreamGetsTheClosedConflict(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", producer: ProducerClaim(id: "p", epoch: 2, seq: 0))
        try h.close()
        let error = h.appendError("b", producer: ProducerClaim(id: "p", epoch: 1, seq: 0))
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == "true")
    }

    @Test(arguments: StoreBackend.all) func closeOnlyWithAProducerAdvancesItsState(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("message", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        let close = try h.close(producer: ProducerClaim(id: "p", epoch: 0, seq: 1))
        #expect(close.closed)
        #expect(!close.duplicate)
        #expect(close.producer == ProducerState(epoch: 0, lastSeq: 1))
        // Its retry is recognised.
        let retry = try h.close(producer: ProducerClaim(id: "p", epoch: 0, seq: 1))
        #expect(retry.duplicate)
        #expect(retry.producer == ProducerState(epoch: 0, lastSeq: 1))
    }

    /// §5.2.1: on a closed stream only the request that closed it is a duplicate; a close-only
    /// request from another producer (or another seq) is told the stream is closed. A plain
    /// close-only request without producer headers stays idempotent.
    @Test(arguments: StoreBackend.all) func closeOnlyFromAnotherProducerOnAClosedStreamConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        _ = try h.close(producer: ProducerClaim(id: "A", epoch: 0, seq: 0))
        let other = try #require(h.appendError("", type: nil, closed: true, producer: ProducerClaim(id: "B", epoch: 0, seq: 0)))
        #expect(other.status == .conflict)
        #expect(other.header(HeaderName.closed) == "true")
        let later = try #require(h.appendError("", type: nil, closed: true, producer: ProducerClaim(id: "A", epoch: 0, seq: 1)))
        #expect(later.status == .conflict)
        #expect(try h.close().duplicate)  // no producer: idempotent
        #expect(try h.close(producer: ProducerClaim(id: "A", epoch: 0, seq: 0)).duplicate)
    }

    @Test(arguments: StoreBackend.all) func closeOnlyWithAProducerGapIsRejectedAndLeavesTheStreamOpen(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("message", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        let error = try #require(h.appendError("", type: nil, closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 5)))
        #expect(error.status == .conflict)
        #expect(error.header(HeaderName.producerExpectedSeq) == "1")
        #expect(try h.info().closed == false)
    }
}
