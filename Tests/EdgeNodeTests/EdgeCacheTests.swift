import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Edge: catch-up cache")
struct EdgeCacheTests {
    @Test func secondReadIsAHitWithAge() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "hello")
            let first = try await edges.request(.GET, "/v1/stream/a?offset=-1")
            #expect(first.header("X-Cache") == "MISS")
            let second = try await edges.request(.GET, "/v1/stream/a")
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.text == "hello")
            #expect(second.header("Age") != nil)
            #expect(second.header("ETag") == first.header("ETag"))
            #expect(edges.originRequests("read") == 1)
        }
    }

    @Test func edgeAnswersIfNoneMatchItself() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "hello")
            let first = try await edges.request(.GET, "/v1/stream/a")
            let etag = try #require(first.header("ETag"))
            let conditional = try await edges.request(.GET, "/v1/stream/a", headers: [("If-None-Match", etag)])
            #expect(conditional.status == 304)
            #expect(conditional.body.isEmpty)
            #expect(edges.originRequests("read") == 1)
        }
    }

    @Test func appendPassingThroughMakesTheTailEntryStale() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "one")
            #expect(try await edges.request(.GET, "/v1/stream/a").text == "one")
            let append = try await edges.request(.POST, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "two")
            #expect(append.header("X-Cache") == "PASS")
            let read = try await edges.request(.GET, "/v1/stream/a")
            #expect(read.text == "onetwo")
            #expect(read.header("X-Cache") != "HIT")
        }
    }

    @Test func fullChunksAreImmutableAndClosedEndIsCachedOnce() async throws {
        try await withEdges(origin: { $0.maxChunkBytes = 3 }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain"), ("Stream-Closed", "true")], body: "abcdef")
            var next = "-1"
            for _ in 0..<3 {
                let read = try await edges.request(.GET, "/v1/stream/a?offset=\(next)")
                next = read.header("Stream-Next-Offset")!
            }
            let readsBefore = edges.originRequests("read")
            for _ in 0..<20 {
                for offset in ["-1", "0000000000000000_0000000000000003", "0000000000000000_0000000000000006"] {
                    let read = try await edges.request(.GET, "/v1/stream/a?offset=\(offset)")
                    #expect(read.header("X-Cache") == "HIT")
                }
            }
            #expect(edges.originRequests("read") == readsBefore)
            let eof = try await edges.request(.GET, "/v1/stream/a?offset=0000000000000000_0000000000000006")
            #expect(eof.header("Stream-Closed") == "true")
        }
    }

    @Test func deletePurgesTheStream() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "old")
            _ = try await edges.request(.GET, "/v1/stream/a")
            #expect(edges.edge.cacheStats.entries == 1)
            #expect(try await edges.request(.DELETE, "/v1/stream/a").status == 204)
            #expect(edges.edge.cacheStats.entries == 0)
            #expect(try await edges.request(.GET, "/v1/stream/a").status == 404)
        }
    }

    @Test func errorsAnd204sAreNeverCached() async throws {
        try await withEdges(origin: { $0.longPollTimeout = .milliseconds(100) }) { edges in
            #expect(try await edges.request(.GET, "/v1/stream/missing").status == 404)
            #expect(try await edges.request(.GET, "/v1/stream/missing").header("X-Cache") != "HIT")
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")])
            let poll = try await edges.request(.GET, "/v1/stream/a?offset=0000000000000000_0000000000000000&live=long-poll&cursor=1")
            #expect(poll.status == 204)
            #expect(edges.edge.cacheStats.entries == 0)
        }
    }

    @Test func cacheBudgetHoldsUnderTenTimesItsSize() async throws {
        let budget = 64 * 1024
        try await withEdges(edge: { $0.cacheBudgetBytes = budget }) { edges in
            let body = String(repeating: "x", count: 2_000)
            for index in 0..<320 {  // 320 × ~2.4 KiB ≈ 12 × the budget
                _ = try await edges.request(.PUT, "/v1/stream/s\(index)", headers: [("Content-Type", "text/plain")], body: body)
                _ = try await edges.request(.GET, "/v1/stream/s\(index)")
                let stats = edges.edge.cacheStats
                #expect(stats.bytes <= budget)
            }
            let stats = edges.edge.cacheStats
            #expect(stats.evictions > 0)
            #expect(stats.entries > 0)
            let metrics = try await edges.request(.GET, "/metrics")
            #expect(metrics.text.contains("ds_edge_cache_evictions_total"))
        }
    }

    @Test func credentialsPartitionTheCache() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "x")
            let alice = try await edges.request(.GET, "/v1/stream/a", headers: [("Authorization", "Bearer alice")])
            let bob = try await edges.request(.GET, "/v1/stream/a", headers: [("Authorization", "Bearer bob")])
            let aliceAgain = try await edges.request(.GET, "/v1/stream/a", headers: [("Authorization", "Bearer alice")])
            #expect(alice.header("X-Cache") == "MISS")
            #expect(bob.header("X-Cache") == "MISS")
            #expect(aliceAgain.header("X-Cache") == "HIT")
            let anonymous = try await edges.request(.GET, "/v1/stream/a")
            #expect(anonymous.header("X-Cache") == "MISS")
        }
    }
}
