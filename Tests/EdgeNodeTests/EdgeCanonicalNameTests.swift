import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// The origin decodes percent-escapes in the stream path, so `/v1/stream/a-b`, `/v1/stream/a%2Db`
/// and `/v1/stream/%61-b` are one stream. The edge must treat them as one too: otherwise a write
/// under one spelling leaves answers cached under another behind, and every new spelling is a
/// fresh cache key and a fresh upstream request.
@Suite("Edge: canonical stream names")
struct EdgeCanonicalNameTests {
    static let text = [("Content-Type", "text/plain")]

    @Test func deleteUnderAnotherSpellingPurgesTheCachedStream() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a-b", headers: Self.text, body: "old")
            #expect(try await edges.request(.GET, "/v1/stream/a-b").text == "old")
            #expect(try await edges.request(.DELETE, "/v1/stream/a%2Db").status == 204)
            let after = try await edges.request(.GET, "/v1/stream/a-b")
            #expect(after.status == 404)
            #expect(after.text != "old")
            #expect(edges.edge.cacheStats.entries == 0)
        }
    }

    @Test func spellingsOfOneStreamShareOneCacheEntry() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/room/a-b", headers: Self.text, body: "shared")
            let first = try await edges.request(.GET, "/v1/stream/room/a-b")
            #expect(first.header("X-Cache") == "MISS")
            // An escaped hyphen (either case of hex digit), an escaped letter, an escaped slash.
            for spelling in ["/v1/stream/room/a%2Db", "/v1/stream/room/a%2db", "/v1/stream/r%6Fom/a-b", "/v1/stream/room%2Fa-b"] {
                let read = try await edges.request(.GET, spelling)
                #expect(read.status == 200, "\(spelling)")
                #expect(read.text == "shared", "\(spelling)")
                #expect(read.header("X-Cache") == "HIT", "\(spelling)")
            }
            #expect(edges.originRequests("read") == 1)
            #expect(edges.edge.cacheStats.entries == 1)
        }
    }

    /// The edge purges a stream when it sees it created; under another spelling it must still
    /// recognise the stream, or readers get the previous stream's bytes.
    @Test func streamRecreatedUnderAnotherSpellingIsNotServedStale() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a-b", headers: Self.text, body: "old")
            #expect(try await edges.request(.GET, "/v1/stream/a-b").text == "old")
            // Deleted behind the edge's back, then created again through it under another spelling.
            #expect(try await edges.originRequest(.DELETE, "/v1/stream/a-b").status == 204)
            #expect(try await edges.request(.PUT, "/v1/stream/a%2Db", headers: Self.text, body: "new").status == 201)
            let read = try await edges.request(.GET, "/v1/stream/a-b")
            #expect(read.text == "new")
            #expect(read.header("X-Cache") != "HIT")
        }
    }

    @Test func longPollsUnderDifferentSpellingsShareOneUpstreamRequest() async throws {
        try await withEdges(origin: { $0.longPollTimeout = .seconds(120) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a-b", headers: Self.text)
            let tail = "0000000000000000_0000000000000000"
            let spellings = ["/v1/stream/a-b", "/v1/stream/a%2Db", "/v1/stream/%61-b", "/v1/stream/%61%2d%62"]
            var connections: [TestConnection] = []
            var polls: [EventLoopFuture<TestResponse>] = []
            for spelling in spellings {
                let connection = try await TestConnection.connect(port: edges.port)
                connections.append(connection)
                polls.append(connection.send(.GET, "\(spelling)?offset=\(tail)&live=long-poll&cursor=5"))
            }
            try await eventually { edges.edge.collapsedWaiters == spellings.count }
            _ = try await edges.originRequest(.POST, "/v1/stream/a-b", headers: Self.text, body: "news")
            for poll in polls {
                let response = try await poll.get()
                #expect(response.status == 200 && response.text == "news")
            }
            for connection in connections { await connection.close() }
            #expect(edges.originRequests("long_poll") == 1)
        }
    }

    @Test func sseClientsUnderDifferentSpellingsShareOneSubscription() async throws {
        try await withEdges(origin: { $0.sseReconnectInterval = .seconds(120) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a-b", headers: Self.text)
            let plain = try await SSEReader.open(port: edges.port, "/v1/stream/a-b?offset=-1&live=sse")
            // The first control event is sent as the client attaches to the subscription.
            #expect(await plain.next()?.event == "control")
            let escaped = try await SSEReader.open(port: edges.port, "/v1/stream/a%2Db?offset=-1&live=sse")
            #expect(await escaped.next()?.event == "control")
            _ = try await edges.originRequest(.POST, "/v1/stream/a-b", headers: Self.text, body: "m1")
            for reader in [plain, escaped] {
                var data: String?
                while data == nil, let event = await reader.next() {
                    if event.event == "data" { data = event.data }
                }
                #expect(data == "m1")
            }
            await plain.close()
            await escaped.close()
            #expect(edges.originRequests("sse") == 1)
            #expect(edges.edge.metrics.registry.emitToString().contains(#"ds_edge_requests_total{class="sse",cache="COLLAPSED"} 1"#))
        }
    }

    /// A name the origin refuses is passed through (the origin answers 400) and never cached.
    @Test func invalidNamesPassThroughUncached() async throws {
        try await withEdges { edges in
            for path in ["/v1/stream/a%2F..%2Fb", "/v1/stream/a%zz", "/v1/stream/a%00b"] {
                let read = try await edges.request(.GET, path)
                #expect(read.status == 400, "\(path)")
                #expect(read.header("X-Cache") == "PASS", "\(path)")
            }
            #expect(edges.edge.cacheStats.entries == 0)
        }
    }
}
