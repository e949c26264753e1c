@testable import EdgeNode
import NIOCore
import NIOHTTP1
import ServerSupport
import Testing

/// Encode once, write many: a cache entry and a flight's answer are serialized once, and every
/// request they answer is written from those same bytes.
@Suite("Edge: encoded answers")
struct EncodedAnswersTests {
    /// Whether two buffers are views of the same storage (no copy was made).
    static func sameBytes(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
        a.withUnsafeReadableBytes { x in b.withUnsafeReadableBytes { y in x.baseAddress == y.baseAddress && x.count == y.count } }
    }

    static func answer(cursor: String) -> UpstreamResponse {
        var response = UpstreamResponse(
            head: HTTPResponseHead(version: .http1_1, status: .ok, headers: [
                "Content-Type": "text/plain", "Stream-Next-Offset": "0000000000000000_0000000000000002", "Stream-Cursor": cursor,
            ]),
            body: ByteBuffer(string: "hi"))
        response.headersToServe = EdgeService.headersToServe(response)
        response.encoded = EdgeService.encodedToServe(response)
        response.adopted = AdoptedAnswers()
        return response
    }

    @Test func aCachedEntryKeepsItsResponseAsBytes() {
        let entry = CachedResponse(
            status: .ok, headers: ["Content-Type": "text/plain"], body: ByteBuffer(string: "abc"),
            storedAt: .uptimeNanoseconds(0), freshUntil: nil, staleUntil: nil, etag: nil)
        #expect(String(buffer: entry.encoded.headLines) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n")
        // Served twice, the same bytes both times.
        let first = entry.encoded, second = entry.encoded
        #expect(Self.sameBytes(first.headLines, second.headLines))
        #expect(Self.sameBytes(first.body, entry.body))
    }

    @Test func aRevalidatedCopyOfAnEntryKeepsItsBytes() {
        let entry = CachedResponse(
            status: .ok, headers: ["A": "1"], body: ByteBuffer(string: "x"),
            storedAt: .uptimeNanoseconds(0), freshUntil: .uptimeNanoseconds(10), staleUntil: nil, etag: nil)
        // What a 304 changes (the cache's `refresh`): its times only, never the bytes served.
        var refreshed = entry
        refreshed.storedAt = .uptimeNanoseconds(5)
        refreshed.freshUntil = .uptimeNanoseconds(15)
        #expect(String(buffer: refreshed.encoded.headLines) == "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 1\r\n")
        #expect(Self.sameBytes(refreshed.encoded.headLines, entry.encoded.headLines))
        #expect(Self.sameBytes(refreshed.body, entry.body))
        #expect(entry.freshUntil == .uptimeNanoseconds(10))
    }

    @Test func followersWhoseCursorIsKeptShareTheFlightsBytes() throws {
        let response = Self.answer(cursor: "100")
        let encoded = try #require(response.encoded)
        #expect(String(buffer: encoded.headLines).contains("Stream-Cursor: 100\r\n"))
        // A follower that came with an older cursor keeps the upstream's: nothing is rebuilt.
        let follower = EdgeService.adoptingCursor(response, client: "42")
        let shared = try #require(follower.encoded)
        #expect(Self.sameBytes(shared.headLines, encoded.headLines))
        // Those whose cursor is at or past it get a cursor of their own: serialized once per
        // distinct cursor, shared by every waiter that gets it.
        let ahead = EdgeService.adoptingCursor(response, client: "100")
        let aheadToo = EdgeService.adoptingCursor(response, client: "100")
        #expect(ahead.facts.cursor == "101")
        let a = try #require(ahead.encoded), b = try #require(aheadToo.encoded)
        #expect(String(buffer: a.headLines).contains("Stream-Cursor: 101\r\n"))
        #expect(Self.sameBytes(a.headLines, b.headLines))
        #expect(Self.sameBytes(a.body, encoded.body))
        let further = EdgeService.adoptingCursor(response, client: "200")
        #expect(further.facts.cursor == "201")
        #expect(response.adopted?.count == 2)
    }

    @Test func aNotModifiedAnswerIsNotEncodedForWaiters() {
        let response = UpstreamResponse(head: HTTPResponseHead(version: .http1_1, status: .notModified), body: ByteBuffer())
        #expect(EdgeService.encodedToServe(response) == nil)
    }
}
