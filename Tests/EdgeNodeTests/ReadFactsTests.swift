import DurableStreams
@testable import EdgeNode
import NIOCore
import NIOHTTP1
import Testing

/// The facts of a read answer, parsed once from its headers.
@Suite("ReadFacts")
struct ReadFactsTests {
    @Test func everyFactIsReadFromItsHeader() throws {
        let end = StreamOffset(position: 16)
        let facts = ReadFacts([
            HeaderName.nextOffset: end.description, HeaderName.upToDate: "true", HeaderName.closed: "true",
            HeaderName.cursor: "42", "ETag": "\"e1\"", "Cache-Control": "private, max-age=5",
        ])
        #expect(facts == ReadFacts(nextOffset: end, upToDate: true, closed: true, cursor: "42", etag: "\"e1\"", isPrivate: true))
    }

    @Test func absentOrMalformedHeadersAreNoFacts() {
        #expect(ReadFacts([:]) == ReadFacts())
        let facts = ReadFacts([HeaderName.nextOffset: "not-an-offset", HeaderName.upToDate: "yes", HeaderName.closed: "false"])
        #expect(facts.nextOffset == nil)
        #expect(!facts.upToDate)
        #expect(!facts.closed)
    }

    @Test func anUpstreamAnswerAndACacheEntryCarryTheirFacts() {
        let headers: HTTPHeaders = [HeaderName.closed: "true", "ETag": "\"a\""]
        let response = UpstreamResponse(head: HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: ByteBuffer())
        #expect(response.facts.closed)
        #expect(response.facts.etag == "\"a\"")
        let entry = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(), storedAt: .now(), freshUntil: nil, staleUntil: nil, etag: "\"b\"")
        #expect(entry.facts.closed)
        #expect(entry.etag == "\"b\"")
    }

    @Test func aSharedAnswerAdoptingAClientsCursorUpdatesItsFacts() {
        let response = UpstreamResponse(
            head: HTTPResponseHead(version: .http1_1, status: .ok, headers: [HeaderName.cursor: "10"]), body: ByteBuffer())
        let adopted = EdgeService.adoptingCursor(response, client: "500")
        #expect(adopted.facts.cursor == adopted.head.headers.first(name: HeaderName.cursor))
        #expect(adopted.facts.cursor != "10")
    }
}
