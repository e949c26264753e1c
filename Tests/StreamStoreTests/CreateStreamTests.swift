import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: create (PUT)")
struct CreateStreamTests {
    @Test(arguments: StoreBackend.all) func firstCreateIsCreated(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(type: "text/plain")
        #expect(result.created)
        #expect(result.info.tail == .zero)
        #expect(result.info.closed == false)
        #expect(result.info.contentType == ContentType("text/plain"))
        #expect(result.info.lifetime == .unlimited)
        #expect(result.info.expiresAt == nil)
        #expect(h.store.streamCount == 1)
    }

    @Test(arguments: StoreBackend.all) func initialBodyIsStoredAndReadable(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(body: "hello")
        #expect(result.info.tail == offset(5))
        #expect(try h.text() == "hello")
        let read = try h.read()
        #expect(read.upToDate)
    }

    @Test(arguments: StoreBackend.all) func storedContentTypeKeepsTheCreatorsSpelling(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain; charset=utf-8")
        #expect(try h.info().contentType.headerValue == "text/plain; charset=utf-8")
    }

    @Test(arguments: StoreBackend.all) func identicalCreateIsIdempotent(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let first = try h.create(type: "text/plain", lifetime: .ttl(seconds: 3600), body: "abc")
        let second = try h.create(type: "text/plain", lifetime: .ttl(seconds: 3600))
        #expect(!second.created)
        #expect(second.info.id == first.info.id)
        #expect(second.info.tail == offset(3))
        #expect(h.store.streamCount == 1)
    }

    @Test(arguments: StoreBackend.all) func idempotentCreateDoesNotAppendItsBody(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let again = try h.create(body: "xyz")
        #expect(!again.created)
        #expect(try h.text() == "abc")
    }

    @Test(arguments: StoreBackend.all) func contentTypeComparisonIgnoresCaseAndParameters(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        #expect(try h.create(type: "APPLICATION/JSON").created == false)
        #expect(try h.create(type: "application/json; charset=utf-8").created == false)
    }

    @Test(arguments: StoreBackend.all) func differentContentTypeConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain")
        #expect(h.createError(type: "application/json")?.status == .conflict)
        #expect(h.createError(type: "application/octet-stream")?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func differentLifetimeConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 3600))
        #expect(h.createError(lifetime: .ttl(seconds: 7200))?.status == .conflict)
        #expect(h.createError(lifetime: .unlimited)?.status == .conflict)
        let instant = h.clock.now + 100
        #expect(h.createError(lifetime: .expiresAt(seconds: instant, text: "x"))?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func ttlPresentVersusAbsentConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        #expect(h.createError(lifetime: .ttl(seconds: 3600))?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func sameExpiryInstantSpelledDifferentlyIsIdempotent(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let instant = h.clock.now + 3600
        try h.create(lifetime: .expiresAt(seconds: instant, text: "a"))
        #expect(try h.create(lifetime: .expiresAt(seconds: instant, text: "b")).created == false)
        #expect(h.createError(lifetime: .expiresAt(seconds: instant + 1, text: "a"))?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func closedStateMismatchConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("open")
        #expect(h.createError("open", closed: true)?.status == .conflict)
        try h.create("closed", closed: true)
        #expect(h.createError("closed", closed: false)?.status == .conflict)
        #expect(try h.create("closed", closed: true).created == false)
    }

    @Test(arguments: StoreBackend.all) func aStreamClosedByAppendNoLongerMatchesAnOpenCreate(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.close()
        #expect(h.createError()?.status == .conflict)
        #expect(try h.create(closed: true).created == false)
    }

    @Test(arguments: StoreBackend.all) func createClosedWithBody(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(closed: true, body: "final")
        #expect(result.created)
        #expect(result.info.closed)
        #expect(result.info.tail == offset(5))
        let read = try h.read()
        #expect(read.text == "final")
        #expect(read.reachedClosedEnd)
    }

    @Test(arguments: StoreBackend.all) func createClosedEmpty(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(closed: true)
        #expect(result.info.closed)
        #expect(result.info.tail == .zero)
    }

    @Test(arguments: StoreBackend.all) func jsonBodyIsSplitIntoMessages(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(type: "application/json", body: "[{\"a\":1}, {\"b\":2}]")
        #expect(result.created)
        // Each message is stored followed by a comma.
        #expect(try h.text() == "{\"a\":1},{\"b\":2},")
    }

    @Test(arguments: StoreBackend.all) func jsonEmptyArrayCreatesAnEmptyStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let result = try h.create(type: "application/json", body: "[]")
        #expect(result.created)
        #expect(result.info.tail == .zero)
    }

    @Test(arguments: StoreBackend.all) func jsonNonArrayBodyIsOneMessage(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json", body: "{\"initial\": true}")
        #expect(try h.text() == "{\"initial\": true},")
    }

    @Test(arguments: StoreBackend.all) func invalidJSONBodyIsABadRequestAndCreatesNothing(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.createError(type: "application/json", body: "{ invalid json }")?.status == .badRequest)
        #expect(h.store.streamCount == 0)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func nonJSONBodiesAreNotValidated(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/ndjson", body: "{ not json")
        #expect(try h.text() == "{ not json")
    }

    @Test(arguments: StoreBackend.all) func streamIDsAreUniqueAcrossPathsAndRecreation(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let a = try h.create("a").info.id
        let b = try h.create("b").info.id
        try h.delete("a")
        let a2 = try h.create("a").info.id
        #expect(Set([a, b, a2]).count == 3)
    }

    @Test(arguments: StoreBackend.all) func recreatingADeletedStreamStartsEmpty(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "old data")
        try h.append(" more old data")
        try h.delete()
        let result = try h.create(body: "new data")
        #expect(result.created)
        #expect(try h.text() == "new data")
        try h.append(" appended")
        #expect(try h.text() == "new data appended")
    }

    @Test(arguments: StoreBackend.all) func streamsAreIndependent(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "A")
        try h.create("b", type: "application/json", body: "[1]")
        try h.append("a", "a")
        #expect(try h.text("a") == "Aa")
        #expect(try h.text("b") == "1,")
        #expect(h.store.streamCount == 2)
    }

    @Test(arguments: StoreBackend.all) func namesThatDifferOnlyInCaseAreDifferentStreams(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("Stream", body: "upper")
        #expect(try h.create("stream", body: "lower").created)
        #expect(try h.text("Stream") == "upper")
        #expect(try h.text("stream") == "lower")
    }

    @Test(arguments: StoreBackend.all)
    func namesThatAreCanonicallyEquivalentButByteDistinctAreDifferentStreams(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let composed = "caf\u{E9}"      // "é" as one scalar (NFC), from /caf%C3%A9
        let decomposed = "cafe\u{301}"  // "e" + combining acute (NFD), from /cafe%CC%81
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        try h.create(composed, body: "nfc")
        let second = try h.create(decomposed, body: "nfd")
        #expect(second.created)
        #expect(try h.text(composed) == "nfc")
        #expect(try h.text(decomposed) == "nfd")
        #expect(h.store.streamCount == 2)
    }
}
