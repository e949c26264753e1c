import DurableStreams
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import OriginServer
import ServerSupport
import StreamStore
import TestSupport
import Testing

/// Catch-up answers for ranges that no longer change are built once and reused while hot.
@Suite("Origin: reused catch-up answers")
struct ReadAnswerReuseTests {
    static func answer(_ text: String) -> EncodedResponse {
        EncodedResponse(HTTPResponseHead(version: .http1_1, status: .ok), body: ByteBuffer(string: text))
    }

    static func key(_ n: Int) -> ReadAnswerCache.Key {
        ReadAnswerCache.Key(id: "s", start: StreamOffset(position: UInt64(n)), end: StreamOffset(position: UInt64(n + 1)), upToDate: false, closed: false)
    }

    @Test func theCacheIsBoundedInEntriesAndBytesOldestFirst() {
        let cache = ReadAnswerCache(maxEntries: 2, maxBytes: 1_000, maxAnswerBytes: 600)
        cache.put(Self.key(1), Self.answer("a"))
        cache.put(Self.key(2), Self.answer("b"))
        cache.put(Self.key(3), Self.answer("c"))
        #expect(cache.get(Self.key(1)) == nil)
        #expect(cache.get(Self.key(2)) != nil && cache.get(Self.key(3)) != nil)
        #expect(cache.stats.entries == 2)
        // Too big for one entry: not kept, nothing evicted for it.
        cache.put(Self.key(4), Self.answer(String(repeating: "x", count: 700)))
        #expect(cache.get(Self.key(4)) == nil)
        #expect(cache.stats.entries == 2)
        // Two of 500 bytes do not fit together in 1,000 with their heads: the older goes.
        cache.put(Self.key(5), Self.answer(String(repeating: "y", count: 500)))
        cache.put(Self.key(6), Self.answer(String(repeating: "z", count: 500)))
        #expect(cache.get(Self.key(5)) == nil && cache.get(Self.key(6)) != nil)
        #expect(cache.stats.bytes <= 1_000)
    }

    /// The origin's responder on an EmbeddedChannel, reading at most 4 bytes per answer so that
    /// a stream of 8 has a first chunk that can no longer change.
    func makeChannel() throws -> (EmbeddedChannel, StreamService) {
        var configuration = OriginConfiguration()
        configuration.maxChunkBytes = 4
        let service = StreamService(configuration: configuration, store: MemoryStore(), metrics: OriginMetrics())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(responder: service))
        return (channel, service)
    }

    func exchange(_ channel: EmbeddedChannel, _ method: HTTPMethod, _ uri: String, headers: HTTPHeaders = [:], body: String? = nil) throws -> String {
        var headers = headers
        headers.add(name: "Host", value: "example")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.embeddedEventLoop.run()
        return String(buffer: try WrittenResponses.bytes(channel))
    }

    static func header(_ name: String, in response: String) -> String? {
        response.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ": ") }
            .map { String($0.dropFirst(name.count + 2)) }
    }

    @Test func aChunkThatCannotChangeIsAnsweredFromTheSameBytes() throws {
        let (channel, service) = try makeChannel()
        _ = try exchange(channel, .PUT, "/v1/stream/r", headers: ["Content-Type": "text/plain"], body: "abcdefgh")
        let first = try exchange(channel, .GET, "/v1/stream/r?offset=-1")
        #expect(first.hasSuffix("\r\n\r\nabcd"))
        #expect(service.answers.stats.entries == 1)
        let second = try exchange(channel, .GET, "/v1/stream/r?offset=-1")
        #expect(second == first)
        // The tail chunk: kept under what the read found (up to date, ending at the tail)...
        let next = try #require(Self.header("Stream-Next-Offset", in: first))
        let tail = try exchange(channel, .GET, "/v1/stream/r?offset=\(next)")
        #expect(tail.hasSuffix("efgh"))
        #expect(Self.header("Stream-Up-To-Date", in: tail) == "true")
        #expect(service.answers.stats.entries == 2)
        // ...and never given once the tail has moved: the same request now reads more.
        _ = try exchange(channel, .POST, "/v1/stream/r", headers: ["Content-Type": "text/plain"], body: "ij")
        let moved = try exchange(channel, .GET, "/v1/stream/r?offset=\(next)")
        #expect(moved.hasSuffix("efgh"))
        #expect(Self.header("Stream-Up-To-Date", in: moved) == nil)
        _ = try exchange(channel, .POST, "/v1/stream/r", headers: ["Stream-Closed": "true"])
        let closed = try exchange(channel, .GET, "/v1/stream/r?offset=\(try #require(Self.header("Stream-Next-Offset", in: moved)))")
        #expect(closed.hasSuffix("ij"))
        #expect(Self.header("Stream-Closed", in: closed) == "true")
        // A conditional read is still answered 304 when it names the same bytes.
        let etag = try #require(Self.header("ETag", in: first))
        let conditional = try exchange(channel, .GET, "/v1/stream/r?offset=-1", headers: ["If-None-Match": etag])
        #expect(conditional.hasPrefix("HTTP/1.1 304"))
        _ = try channel.finish()
    }

    @Test func aRecreatedStreamIsNotAnsweredWithTheOldOnesBytes() throws {
        let (channel, service) = try makeChannel()
        _ = try exchange(channel, .PUT, "/v1/stream/r", headers: ["Content-Type": "text/plain"], body: "abcdefgh")
        #expect(try exchange(channel, .GET, "/v1/stream/r?offset=-1").hasSuffix("abcd"))
        _ = try exchange(channel, .DELETE, "/v1/stream/r")
        _ = try exchange(channel, .PUT, "/v1/stream/r", headers: ["Content-Type": "text/plain"], body: "ABCDEFGH")
        #expect(try exchange(channel, .GET, "/v1/stream/r?offset=-1").hasSuffix("ABCD"))
        #expect(service.answers.stats.entries == 2)
        _ = try channel.finish()
    }

    @Test func anAnswerTooBigToKeepIsNotCopied() throws {
        var configuration = OriginConfiguration()
        configuration.compression = false
        let service = StreamService(configuration: configuration, store: MemoryStore(), metrics: OriginMetrics())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(responder: service))
        let big = String(repeating: "x", count: service.answers.maxAnswerBytes + 1)
        _ = try exchange(channel, .PUT, "/v1/stream/big", headers: ["Content-Type": "text/plain"], body: big)
        #expect(try exchange(channel, .GET, "/v1/stream/big?offset=-1").hasSuffix(big))
        #expect(service.answers.stats.entries == 0)
        _ = try channel.finish()
    }

    @Test func streamsWithALifetimeAndCompressedAnswersAreNotKept() throws {
        let (channel, service) = try makeChannel()
        _ = try exchange(channel, .PUT, "/v1/stream/t", headers: ["Content-Type": "text/plain", "Stream-TTL": "3600"], body: "abcdefgh")
        #expect(try exchange(channel, .GET, "/v1/stream/t?offset=-1").hasSuffix("abcd"))
        _ = try exchange(channel, .PUT, "/v1/stream/g", headers: ["Content-Type": "text/plain"], body: "abcdefgh")
        _ = try exchange(channel, .GET, "/v1/stream/g?offset=-1", headers: ["Accept-Encoding": "gzip"])
        #expect(service.answers.stats.entries == 0)
        _ = try channel.finish()
    }
}
