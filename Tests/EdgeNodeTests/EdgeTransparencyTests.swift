import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// What clients can tell from the edge's answers: `X-Cache` on every path, `Age` on cached
/// answers, and everything that is not a cacheable read passing through unchanged.
@Suite("Edge: transparency")
struct EdgeTransparencyTests {
    static let text = [("Content-Type", "text/plain")]

    /// MISS, COLLAPSED, HIT, and PASS for uncacheable, failing and write paths, each with `X-Cache`.
    @Test func everyAnswerSaysHowItWasServed() async throws {
        let gate = FakeGate()
        try await withFakeUpstream({ request in
            switch (request.method, request.path) {
            case (.GET, "/v1/stream/a"): return .read("data", next: 4, upToDate: false, cacheControl: "public, max-age=60").held(by: gate)
            case (.GET, "/v1/stream/nostore"): return .read("volatile", next: 8, cacheControl: "no-store")
            case (.GET, _): return FakeResponse(status: .notFound, headers: [("Content-Type", "text/plain")], body: "no such stream")
            case (.POST, _): return FakeResponse(status: .noContent, headers: [("Stream-Next-Offset", FakeResponse.offset(9))])
            default: return FakeResponse(status: .ok, headers: [("Stream-Next-Offset", FakeResponse.offset(4)), ("Content-Type", "text/plain")])
            }
        }) { t in
            let leader = try await TestConnection.connect(port: t.port)
            let follower = try await TestConnection.connect(port: t.port)
            let first = leader.send(.GET, "/v1/stream/a")
            try await eventually { t.fake.requests(.GET).count == 1 }
            let second = follower.send(.GET, "/v1/stream/a")
            try await eventually { t.edge.collapsedWaiters == 2 }
            gate.open()
            let miss = try await first.get()
            let collapsed = try await second.get()
            await leader.close()
            await follower.close()
            #expect(miss.header("X-Cache") == "MISS")
            #expect(collapsed.header("X-Cache") == "COLLAPSED")
            #expect(miss.text == "data" && collapsed.text == "data")
            #expect(t.fake.requests(.GET).count == 1)

            let hit = try await t.request(.GET, "/v1/stream/a")
            #expect(hit.header("X-Cache") == "HIT")
            #expect(hit.text == "data")
            let age = try #require(hit.header("Age").flatMap { Int($0) })
            #expect(age >= 0 && age < 60)

            // Uncacheable answers: relayed each time, never stored.
            for _ in 0..<2 {
                let noStore = try await t.request(.GET, "/v1/stream/nostore")
                #expect(noStore.header("X-Cache") == "MISS")
                #expect(noStore.text == "volatile")
                let missing = try await t.request(.GET, "/v1/stream/missing")
                #expect(missing.status == 404)
                #expect(missing.header("X-Cache") == "MISS")
                #expect(missing.text == "no such stream")
            }
            #expect(t.fake.requests(.GET, path: "/v1/stream/nostore").count == 2)
            #expect(t.fake.requests(.GET, path: "/v1/stream/missing").count == 2)

            let head = try await t.request(.HEAD, "/v1/stream/a")
            #expect(head.header("X-Cache") == "PASS")
            let append = try await t.request(.POST, "/v1/stream/a", headers: Self.text, body: "x")
            #expect(append.status == 204)
            #expect(append.header("X-Cache") == "PASS")
            #expect(append.header("Stream-Next-Offset") == FakeResponse.offset(9))
            #expect(t.edge.cacheStats.entries == 1)

            await t.fake.stop()
            let down = try await t.request(.GET, "/v1/stream/elsewhere")
            #expect([502, 504].contains(down.status))
            #expect(down.header("X-Cache") == "PASS")
            #expect(try await t.request(.GET, "/v1/stream/a").header("X-Cache") == "HIT")
        }
    }

    /// HEAD goes upstream every time, with the origin's metadata, and leaves nothing in the cache;
    /// a cached GET of the same stream does not answer it either.
    @Test func headPassesThroughAndIsNeverCached() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/h", headers: Self.text, body: "abc")
            for _ in 0..<3 {
                let head = try await edges.request(.HEAD, "/v1/stream/h")
                #expect(head.status == 200)
                #expect(head.header("X-Cache") == "PASS")
                #expect(head.header("Stream-Next-Offset") == FakeResponse.offset(3))
                #expect(head.header("Cache-Control") == "no-store")
                #expect(head.body.isEmpty)
            }
            #expect(edges.edge.cacheStats.entries == 0)
            _ = try await edges.request(.GET, "/v1/stream/h")
            _ = try await edges.request(.POST, "/v1/stream/h", headers: Self.text, body: "d")
            let head = try await edges.request(.HEAD, "/v1/stream/h")
            #expect(head.header("X-Cache") == "PASS")
            #expect(head.header("Stream-Next-Offset") == FakeResponse.offset(4))
            #expect(edges.originRequests("head") == 4)
            #expect(edges.edge.cacheStats.entries == 1)  // only the GET's
            #expect(try await edges.request(.HEAD, "/v1/stream/none").status == 404)
        }
    }

    /// Writes reach the origin and their answers come back with status and protocol headers intact.
    @Test func writesPassThroughWithTheirStatusesAndHeaders() async throws {
        try await withEdges { edges in
            let create = try await edges.request(.PUT, "/v1/stream/w", headers: Self.text, body: "ab")
            #expect(create.status == 201)
            #expect(create.header("X-Cache") == "PASS")
            #expect(create.header("Stream-Next-Offset") == FakeResponse.offset(2))
            #expect(create.header("Location") == "http://127.0.0.1:\(edges.port)/v1/stream/w")
            let again = try await edges.request(.PUT, "/v1/stream/w", headers: Self.text)
            #expect(again.status == 200)
            #expect(again.header("X-Cache") == "PASS")
            #expect(try await edges.request(.PUT, "/v1/stream/w", headers: [("Content-Type", "application/json")]).status == 409)

            let append = try await edges.request(.POST, "/v1/stream/w", headers: Self.text, body: "c")
            #expect(append.status == 204)
            #expect(append.header("Stream-Next-Offset") == FakeResponse.offset(3))
            #expect(append.header("X-Cache") == "PASS")
            #expect(try await edges.request(.POST, "/v1/stream/w", headers: Self.text).status == 400)  // empty append

            let producer = [("Content-Type", "text/plain"), ("Producer-Id", "p1"), ("Producer-Epoch", "0")]
            let fresh = try await edges.request(.POST, "/v1/stream/w", headers: producer + [("Producer-Seq", "0")], body: "d")
            #expect(fresh.status == 200)
            #expect(fresh.header("Producer-Epoch") == "0")
            #expect(fresh.header("Producer-Seq") == "0")
            #expect(fresh.header("X-Cache") == "PASS")
            let duplicate = try await edges.request(.POST, "/v1/stream/w", headers: producer + [("Producer-Seq", "0")], body: "d")
            #expect(duplicate.status == 204)
            #expect(duplicate.header("X-Cache") == "PASS")
            let gap = try await edges.request(.POST, "/v1/stream/w", headers: producer + [("Producer-Seq", "5")], body: "e")
            #expect(gap.status == 409)
            #expect(gap.header("Producer-Expected-Seq") == "1")
            #expect(gap.header("Producer-Received-Seq") == "5")

            let close = try await edges.request(.POST, "/v1/stream/w", headers: Self.text + [("Stream-Closed", "true")])
            #expect(close.status == 204)
            #expect(close.header("Stream-Closed") == "true")
            let late = try await edges.request(.POST, "/v1/stream/w", headers: Self.text, body: "f")
            #expect(late.status == 409)
            #expect(late.header("Stream-Closed") == "true")
            #expect(late.header("Stream-Next-Offset") == FakeResponse.offset(4))
            #expect(late.header("X-Cache") == "PASS")

            #expect(edges.edge.cacheStats.entries == 0)
            let read = try await edges.request(.GET, "/v1/stream/w")
            #expect(read.text == "abcd")
            #expect(read.header("Stream-Closed") == "true")
        }
    }

    /// `offset=now` names a moving position: every such read goes upstream and nothing is kept.
    @Test func offsetNowIsNeverCached() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/n", headers: Self.text, body: "abc")
            for expected in ["0000000000000000_0000000000000003", "0000000000000000_0000000000000004"] {
                for _ in 0..<2 {
                    let now = try await edges.request(.GET, "/v1/stream/n?offset=now")
                    #expect(now.status == 200)
                    #expect(now.body.isEmpty)
                    #expect(now.header("X-Cache") == "PASS")
                    #expect(now.header("Age") == nil)
                    #expect(now.header("Stream-Next-Offset") == expected)
                    #expect(now.header("Cache-Control") == "no-store")
                }
                _ = try await edges.request(.POST, "/v1/stream/n", headers: Self.text, body: "d")
            }
            #expect(edges.originRequests("read") == 4)
            #expect(edges.edge.cacheStats.entries == 0)
        }
    }

    /// SSE answers are answers too: each says how it was served (the first subscriber's
    /// subscription is its own, later ones join it).
    @Test
    func sseAnswersCarryXCache() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/s", headers: Self.text + [("Stream-Closed", "true")], body: "x")
            var outcomes: [String?] = []
            for _ in 0..<2 {
                let reader = try await SSEReader.open(port: edges.port, "/v1/stream/s?offset=-1&live=sse")
                let connection = reader.connection
                let watchdog = Task {
                    try? await Task.sleep(for: .seconds(5))
                    await connection.close()
                }
                let events = await reader.remaining()  // a closed stream: the edge ends the response
                watchdog.cancel()
                let response = try await reader.response.get()
                await reader.close()
                #expect(response.status == 200)
                #expect(response.header("Content-Type") == "text/event-stream")
                #expect(events.contains { $0.event == "data" && $0.data == "x" })
                outcomes.append(response.header("X-Cache"))
            }
            let known = Set(["HIT", "MISS", "STALE", "REVALIDATED", "COLLAPSED", "PASS"])
            #expect(outcomes.allSatisfy { $0.map(known.contains) == true }, "X-Cache on SSE answers: \(outcomes)")
        }
    }
}
