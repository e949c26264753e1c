import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// The offset of byte `position` of a stream, as the origin spells it.
private func offset(_ position: Int) -> String {
    let digits = String(position)
    return "0000000000000000_" + String(repeating: "0", count: 16 - digits.count) + digits
}

extension EdgeTopology {
    /// A fork `PUT` sent through the edge.
    func fork(_ fork: String, from source: String, at forkOffset: String? = nil, body: String? = nil) async throws -> TestResponse {
        var headers = [("Stream-Forked-From", source)]
        if let forkOffset { headers.append(("Stream-Fork-Offset", forkOffset)) }
        return try await request(.PUT, fork, headers: headers, body: body)
    }
}

/// Forks (§4.2) seen through an edge: created by passing through, cached per stream like any
/// other, and a soft-deleted stream's answers (410) never hidden behind its cached data.
@Suite("Edge: forks")
struct EdgeForkTests {
    static let source = "/v1/stream/src"
    /// Its name extends the source's, so a purge that matched names by prefix would show.
    static let fork = "/v1/stream/src-fork"

    // A fork PUT passes through the edge with its headers and creates the fork at the origin.
    @Test func aForkPutThroughTheEdgeCreatesTheFork() async throws {
        try await withEdges { edges in
            #expect(try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abcdef").status == 201)
            let created = try await edges.fork(Self.fork, from: Self.source, at: offset(3), body: "123")
            #expect(created.status == 201)
            #expect(created.header("Stream-Next-Offset") == offset(6))
            #expect(created.header("Location")?.hasSuffix(Self.fork) == true)
            #expect(created.header("Content-Type") == "text/plain")
            #expect(created.header("Stream-Forked-From") == nil)
            #expect(try await edges.originRequest(.GET, Self.fork).text == "abc123")
            #expect(try await edges.request(.GET, Self.fork).text == "abc123")
            // Repeats and conflicts are the origin's answers, passed on.
            #expect(try await edges.fork(Self.fork, from: Self.source, at: offset(3), body: "123").status == 200)
            #expect(try await edges.fork(Self.fork, from: Self.source, at: offset(2)).status == 409)
            #expect(try await edges.fork("/v1/stream/other", from: "/v1/stream/missing").status == 404)
        }
    }

    // A fork's reads are cached under the fork's own name: a repeat is a hit, and the source and
    // the fork never get each other's bytes at the same offset, in either order.
    @Test func forkReadsAreCachedUnderTheForksOwnKey() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abc")
            #expect(try await edges.fork(Self.fork, from: Self.source).status == 201)
            _ = try await edges.request(.POST, Self.source, headers: [("Content-Type", "text/plain")], body: "XYZ")
            _ = try await edges.request(.POST, Self.fork, headers: [("Content-Type", "text/plain")], body: "123")

            // From the start: the fork first, then the source.
            let forkFirst = try await edges.request(.GET, "\(Self.fork)?offset=-1")
            #expect(forkFirst.header("X-Cache") == "MISS")
            #expect(forkFirst.text == "abc123")
            let forkAgain = try await edges.request(.GET, "\(Self.fork)?offset=-1")
            #expect(forkAgain.header("X-Cache") == "HIT")
            #expect(forkAgain.text == "abc123")
            let sourceFirst = try await edges.request(.GET, "\(Self.source)?offset=-1")
            #expect(sourceFirst.header("X-Cache") == "MISS")
            #expect(sourceFirst.text == "abcXYZ")
            #expect(try await edges.request(.GET, "\(Self.source)?offset=-1").text == "abcXYZ")

            // At the fork point: the source first, then the fork.
            let sourceAtPoint = try await edges.request(.GET, "\(Self.source)?offset=\(offset(3))")
            #expect(sourceAtPoint.header("X-Cache") == "MISS")
            #expect(sourceAtPoint.text == "XYZ")
            let forkAtPoint = try await edges.request(.GET, "\(Self.fork)?offset=\(offset(3))")
            #expect(forkAtPoint.header("X-Cache") == "MISS")
            #expect(forkAtPoint.text == "123")
            let forkAtPointAgain = try await edges.request(.GET, "\(Self.fork)?offset=\(offset(3))")
            #expect(forkAtPointAgain.header("X-Cache") == "HIT")
            #expect(forkAtPointAgain.text == "123")
            let sourceAtPointAgain = try await edges.request(.GET, "\(Self.source)?offset=\(offset(3))")
            #expect(sourceAtPointAgain.header("X-Cache") == "HIT")
            #expect(sourceAtPointAgain.text == "XYZ")
            #expect(edges.originRequests("read") == 4)
        }
    }

    // Deleting a source with forks through the edge: its reads are then 410, never its cached 200,
    // however often they are asked, while the fork still reads.
    @Test func aSoftDeletedSourceIs410NeverItsCachedAnswer() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abc")
            #expect(try await edges.fork(Self.fork, from: Self.source).status == 201)
            for target in ["\(Self.source)?offset=-1", "\(Self.source)?offset=\(offset(1))"] {
                #expect(try await edges.request(.GET, target).header("X-Cache") == "MISS")
                let hit = try await edges.request(.GET, target)
                #expect(hit.header("X-Cache") == "HIT")
                #expect(hit.status == 200)
            }
            #expect(try await edges.request(.DELETE, Self.source).status == 204)
            for _ in 0..<3 {
                for target in ["\(Self.source)?offset=-1", "\(Self.source)?offset=\(offset(1))", Self.source] {
                    let read = try await edges.request(.GET, target)
                    #expect(read.status == 410, "\(target): \(read.status) \(read.header("X-Cache") ?? "-") \(read.text)")
                    #expect(read.header("X-Cache") != "HIT")
                    #expect(read.header("X-Cache") != "STALE")
                }
            }
            #expect(try await edges.request(.HEAD, Self.source).status == 410)
            #expect(try await edges.request(.POST, Self.source, headers: [("Content-Type", "text/plain")], body: "x").status == 410)
            #expect(try await edges.request(.GET, Self.fork).text == "abc")
        }
    }

    // A soft delete through the edge drops the edge's cached answers of that stream, and only those.
    @Test func aSoftDeleteThroughTheEdgePurgesThatStreamsEntries() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abc")
            #expect(try await edges.fork(Self.fork, from: Self.source).status == 201)
            _ = try await edges.request(.GET, "\(Self.fork)?offset=-1")
            _ = try await edges.request(.GET, "\(Self.source)?offset=-1")
            _ = try await edges.request(.GET, "\(Self.source)?offset=\(offset(1))")
            _ = try await edges.request(.GET, "\(Self.source)?offset=-1", headers: [("Authorization", "Bearer reader")])
            #expect(edges.edge.cacheStats.entries == 4)
            #expect(try await edges.request(.DELETE, Self.source).status == 204)
            #expect(edges.edge.cacheStats.entries == 1)
            let fork = try await edges.request(.GET, "\(Self.fork)?offset=-1")
            #expect(fork.header("X-Cache") == "HIT")
            #expect(fork.text == "abc")
        }
    }

    // When the edge learns from the origin that a stream was soft-deleted behind its back (410 on
    // revalidating a stale entry), it stops serving that entry, as it does for a 404.
    @Test func a410SeenOnRevalidationEndsServingTheStaleEntry() async throws {
        let clock = ManualClock()
        try await withEdges(edge: { $0.clock = { clock.now() } }) { edges in
            _ = try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abc")
            #expect(try await edges.fork(Self.fork, from: Self.source).status == 201)
            #expect(try await edges.request(.GET, "\(Self.source)?offset=-1").header("X-Cache") == "MISS")
            // Deleted at the origin directly (another edge, an operator): this edge is not told.
            #expect(try await edges.originRequest(.DELETE, Self.source).status == 204)
            // Past its max-age, inside its stale window: at most a stale copy while one revalidation runs.
            clock.advance(by: .seconds(61))
            var read = try await edges.request(.GET, "\(Self.source)?offset=-1")
            for _ in 0..<300 where read.header("X-Cache") == "STALE" {
                try await Task.sleep(for: .milliseconds(10))
                read = try await edges.request(.GET, "\(Self.source)?offset=-1")
            }
            // The edge did ask: the origin answered its revalidations (with 410).
            #expect(edges.originRequests("read") >= 2)
            #expect(try await edges.originRequest(.GET, "\(Self.source)?offset=-1").status == 410)
            #expect(read.status == 410, "\(read.status) \(read.header("X-Cache") ?? "-") \(read.text)")
            let again = try await edges.request(.GET, "\(Self.source)?offset=-1")
            #expect(again.status == 410, "\(again.status) \(again.header("X-Cache") ?? "-") \(again.text)")
        }
    }

    // The same with a plain stream deleted behind the edge's back: the 404 it then sees ends the stale entry.
    @Test func a404SeenOnRevalidationEndsServingTheStaleEntry() async throws {
        let clock = ManualClock()
        try await withEdges(edge: { $0.clock = { clock.now() } }) { edges in
            _ = try await edges.request(.PUT, Self.source, headers: [("Content-Type", "text/plain")], body: "abc")
            #expect(try await edges.request(.GET, "\(Self.source)?offset=-1").header("X-Cache") == "MISS")
            #expect(try await edges.originRequest(.DELETE, Self.source).status == 204)
            clock.advance(by: .seconds(61))
            var read = try await edges.request(.GET, "\(Self.source)?offset=-1")
            for _ in 0..<300 where read.header("X-Cache") == "STALE" {
                try await Task.sleep(for: .milliseconds(10))
                read = try await edges.request(.GET, "\(Self.source)?offset=-1")
            }
            #expect(read.status == 404)
        }
    }
}
