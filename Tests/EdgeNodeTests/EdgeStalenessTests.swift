import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// Tail entries past their max-age: stale-while-revalidate, conditional revalidation with 304.
/// The fake upstream sends `max-age=1`; each test ages the edge's cache by moving its clock.
@Suite("Edge: staleness and revalidation")
struct EdgeStalenessTests {
    static let path = "/v1/stream/a"
    static let swr = "public, max-age=1, stale-while-revalidate=300"
    static let noSWR = "public, max-age=1, stale-while-revalidate=0"

    /// Requests until the answer is not `X-Cache: outcome` (bounded: a background revalidation
    /// is on its way) and returns it.
    static func firstNot(_ outcome: String, _ t: FakeTopology, _ path: String) async throws -> TestResponse {
        var response = try await t.request(.GET, path)
        for _ in 0..<300 where response.header("X-Cache") == outcome {
            try await Task.sleep(for: .milliseconds(10))
            response = try await t.request(.GET, path)
        }
        return response
    }

    /// An up-to-date tail entry past its max-age is served STALE while exactly one background
    /// revalidation goes upstream (held there until the test lets it go); afterwards the new
    /// answer is a HIT.
    @Test func staleTailIsServedWhileExactlyOneRevalidationRuns() async throws {
        let calls = NIOLockedValueBox(0)
        let gate = FakeGate()
        try await withFakeUpstream({ _ in
            let call = calls.withLockedValue { $0 += 1; return $0 }
            if call == 1 { return .read("v1", next: 2, cacheControl: Self.swr, etag: "\"e1\"") }
            // The revalidated answer stays fresh for a minute, so "fresh again" does not race the clock.
            return .read("v1v2", next: 4, cacheControl: "public, max-age=60, stale-while-revalidate=300", etag: "\"e2\"").held(by: gate)
        }) { t in
            let first = try await t.request(.GET, Self.path)
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.text == "v1")
            let second = try await t.request(.GET, Self.path)
            #expect(second.header("X-Cache") == "HIT")

            let stale = try await t.request(after: .seconds(2), Self.path)
            #expect(stale.status == 200)
            #expect(stale.header("X-Cache") == "STALE")
            #expect(stale.text == "v1")
            #expect(stale.header("Age") == "2")

            // Concurrent readers while the one revalidation is held upstream: all STALE, none upstream.
            try await eventually { t.fake.requests(.GET).count == 2 }
            let burst = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<20 { group.addTask { try await t.request(.GET, Self.path) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(burst.allSatisfy { $0.status == 200 && $0.header("X-Cache") == "STALE" && $0.text == "v1" }, "\(burst.map { "\($0.status) \($0.header("X-Cache") ?? "-") \($0.text)" })")
            #expect(t.fake.requests(.GET).count == 2)
            gate.open()

            let after = try await Self.firstNot("STALE", t, Self.path)
            #expect(after.header("X-Cache") == "HIT")
            #expect(after.text == "v1v2")
            #expect(after.header("ETag") == "\"e2\"")

            let upstream = t.fake.requests(.GET)
            #expect(upstream.count == 2)
            #expect(upstream.last?.header("If-None-Match") == "\"e1\"")
            #expect(upstream.last?.query == "offset=-1")
        }
    }

    /// Past max-age with no stale window: the edge asks upstream with If-None-Match, gets 304,
    /// and serves the cached body (REVALIDATED) — a 200 with the body, never the 304 itself.
    @Test func expiredEntryIsRevalidatedWith304() async throws {
        try await withFakeUpstream({ request in
            if request.header("If-None-Match") == "\"e1\"" {
                return .notModified(etag: "\"e1\"", cacheControl: Self.noSWR, next: 2)
            }
            return .read("v1", next: 2, cacheControl: Self.noSWR, etag: "\"e1\"")
        }) { t in
            let first = try await t.request(.GET, Self.path)
            #expect(first.header("X-Cache") == "MISS")

            let revalidated = try await t.request(after: .seconds(2), Self.path)
            #expect(revalidated.status == 200)
            #expect(revalidated.header("X-Cache") == "REVALIDATED")
            #expect(revalidated.text == "v1")
            #expect(revalidated.header("Content-Length") == "2")
            #expect(revalidated.header("Stream-Next-Offset") == FakeResponse.offset(2))

            let upstream = t.fake.requests(.GET)
            #expect(upstream.count == 2)
            #expect(upstream.last?.header("If-None-Match") == "\"e1\"")

            // Refreshed: fresh again, young again.
            let hit = try await t.request(.GET, Self.path)
            #expect(hit.text == "v1")
            #expect(hit.header("X-Cache") == "HIT")
            #expect(hit.header("Age") == "0")
            #expect(t.fake.requests(.GET).count == 2)

            // A client that has the bytes gets the edge's own 304; one that has other bytes gets the body.
            let conditional = try await t.request(.GET, Self.path, headers: [("If-None-Match", "\"e1\"")])
            #expect(conditional.status == 304)
            #expect(conditional.body.isEmpty)
            let other = try await t.request(.GET, Self.path, headers: [("If-None-Match", "\"zzz\"")])
            #expect(other.status == 200)
            #expect(other.text == "v1")
        }
    }

    /// Stale within stale-while-revalidate: served STALE, the background revalidation gets 304
    /// and refreshes the entry in place (same body, fresh again).
    @Test func backgroundRevalidationWith304RefreshesTheEntry() async throws {
        try await withFakeUpstream({ request in
            if request.header("If-None-Match") == "\"e1\"" {
                return .notModified(etag: "\"e1\"", cacheControl: Self.swr, next: 2)
            }
            return .read("v1", next: 2, cacheControl: Self.swr, etag: "\"e1\"")
        }) { t in
            #expect(try await t.request(.GET, Self.path).header("X-Cache") == "MISS")
            let stale = try await t.request(after: .seconds(2), Self.path)
            #expect(stale.header("X-Cache") == "STALE")
            #expect(stale.status == 200)
            #expect(stale.text == "v1")

            let after = try await Self.firstNot("STALE", t, Self.path)
            #expect(after.status == 200)
            #expect(after.header("X-Cache") == "HIT")
            #expect(after.text == "v1")
            #expect(after.header("Age") == "0")
            // One revalidation, conditional.
            let upstream = t.fake.requests(.GET)
            #expect(upstream.count == 2)
            #expect(upstream.last?.header("If-None-Match") == "\"e1\"")
        }
    }

    /// The edge's own conditional request gets a 304, but by then the entry it revalidated is
    /// gone (here: a DELETE passing through purged it). The client asked unconditionally, so it
    /// must get a 200 with the body, never the edge's 304.
    @Test
    func ownConditional304IsNeverForwardedAfterAPurge() async throws {
        let gate = FakeGate()
        try await withFakeUpstream({ request in
            if request.method == .DELETE { return FakeResponse(status: .noContent) }
            if request.isConditional {
                return .notModified(etag: "\"e1\"", cacheControl: Self.noSWR, next: 2).held(by: gate)
            }
            return .read("v1", next: 2, cacheControl: Self.noSWR, etag: "\"e1\"")
        }) { t in
            #expect(try await t.request(.GET, Self.path).header("X-Cache") == "MISS")
            t.clock.advance(by: .seconds(2))
            let connection = try await TestConnection.connect(port: t.port)
            let pending = connection.send(.GET, Self.path)
            try await eventually { t.fake.requests(.GET).contains { $0.isConditional } }
            #expect(try await t.request(.DELETE, Self.path).status == 204)
            gate.open()
            let response = try await pending.get()
            await connection.close()
            #expect(response.status == 200)
            #expect(response.text == "v1")
        }
    }

    /// The same, with the entry evicted by an unrelated read while the conditional is upstream.
    @Test
    func ownConditional304IsNeverForwardedAfterAnEviction() async throws {
        let big = String(repeating: "b", count: 700)
        let gate = FakeGate()
        try await withFakeUpstream(edge: { $0.cacheBudgetBytes = 1_400 }) { request in
            if request.path == "/v1/stream/big" { return .read(big, next: 700, upToDate: false, cacheControl: "public, max-age=60") }
            if request.isConditional {
                return .notModified(etag: "\"e1\"", cacheControl: Self.noSWR, next: 2).held(by: gate)
            }
            return .read("v1", next: 2, cacheControl: Self.noSWR, etag: "\"e1\"")
        } _: { t in
            #expect(try await t.request(.GET, Self.path).header("X-Cache") == "MISS")
            try #require(t.edge.cacheStats.entries == 1)
            t.clock.advance(by: .seconds(2))
            let connection = try await TestConnection.connect(port: t.port)
            let pending = connection.send(.GET, Self.path)
            try await eventually { t.fake.requests(.GET).contains { $0.isConditional } }
            #expect(try await t.request(.GET, "/v1/stream/big").text == big)
            let evictions = t.edge.cacheStats.evictions
            gate.open()
            try #require(evictions == 1)  // the tail entry made room for the chunk
            let response = try await pending.get()
            await connection.close()
            #expect(response.status == 200)
            #expect(response.text == "v1")
        }
    }

    /// A cached long-poll answer that goes stale is not served stale: a live answer must carry a
    /// current `Stream-Cursor` (required on every live answer of an open stream), so the edge asks
    /// the upstream again with the live request itself.
    @Test
    func staleLongPollEntryIsRefetchedWithItsCursor() async throws {
        let start = FakeResponse.offset(0)
        let live = "/v1/stream/a?offset=\(start)&live=long-poll&cursor=7"
        try await withFakeUpstream({ request in
            if request.query.contains("live=long-poll") {
                return .read("v1", next: 2, cacheControl: Self.swr, etag: "\"e1\"", extra: [("Stream-Cursor", "1000")])
            }
            // The stream grew meanwhile: a catch-up read from the same offset has more.
            return .read("v1v2", next: 4, cacheControl: Self.swr, etag: "\"e2\"")
        }) { t in
            let first = try await t.request(.GET, live)
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.header("Stream-Cursor") == "1000")
            #expect(try await t.request(.GET, live).header("X-Cache") == "HIT")
            let refetched = try await t.request(after: .seconds(2), live)
            #expect(refetched.header("X-Cache") == "MISS")
            #expect(refetched.header("Stream-Cursor") == "1000")
            // It went upstream as the long-poll it is, never as a catch-up read.
            #expect(t.fake.requests(.GET).allSatisfy { $0.query.contains("live=long-poll") })
        }
    }
}
