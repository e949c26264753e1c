import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Edge: collapsing")
struct EdgeCollapsingTests {
    /// 1,000 concurrent long-polls at one offset and cursor: one upstream long-poll, and every
    /// reader gets the appended data.
    @Test func thousandLongPollsMakeOneUpstreamRequest() async throws {
        raiseFileLimit()
        try await withEdges(origin: { $0.longPollTimeout = .seconds(120) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/live", headers: [("Content-Type", "text/plain")])
            let tail = "0000000000000000_0000000000000000"
            let connections = try await withThrowingTaskGroup(of: TestConnection.self) { group in
                for _ in 0..<1_000 { group.addTask { try await TestConnection.connect(port: edges.port) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let polls = connections.map { $0.send(.GET, "/v1/stream/live?offset=\(tail)&live=long-poll&cursor=7") }
            try await eventually { edges.edge.collapsedWaiters == 1_000 }
            _ = try await edges.originRequest(.POST, "/v1/stream/live", headers: [("Content-Type", "text/plain")], body: "news")
            var delivered = 0
            for poll in polls {
                let response = try await poll.get()
                if response.status == 200 && response.text == "news" { delivered += 1 }
            }
            for connection in connections { await connection.close() }
            #expect(delivered == 1_000)
            #expect(edges.originRequests("long_poll") == 1)
        }
    }

    /// Readers whose cursors have drifted apart (jitter, late joiners) still share one upstream
    /// long-poll per offset, and each answer moves its own reader's cursor forward.
    @Test func longPollsWithDifferentCursorsShareOneUpstreamRequest() async throws {
        try await withEdges(origin: { $0.longPollTimeout = .seconds(120) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/drift", headers: [("Content-Type", "text/plain")])
            let tail = "0000000000000000_0000000000000000"
            // Far in the future, so the origin's own answer (interval + jitter) cannot pass them.
            let cursors: [UInt64] = [5, 70, 9_000_000_000, 9_000_000_001, 12_345_678_901]
            var connections: [TestConnection] = []
            var polls: [EventLoopFuture<TestResponse>] = []
            for cursor in cursors {
                let connection = try await TestConnection.connect(port: edges.port)
                connections.append(connection)
                polls.append(connection.send(.GET, "/v1/stream/drift?offset=\(tail)&live=long-poll&cursor=\(cursor)"))
            }
            try await eventually { edges.edge.collapsedWaiters == cursors.count }  // the leader included
            _ = try await edges.originRequest(.POST, "/v1/stream/drift", headers: [("Content-Type", "text/plain")], body: "news")
            for (cursor, poll) in zip(cursors, polls) {
                let response = try await poll.get()
                #expect(response.status == 200 && response.text == "news")
                let next = try #require(response.header("Stream-Cursor").flatMap { UInt64($0) })
                #expect(next > cursor, "cursor \(cursor) came back as \(next)")
            }
            for connection in connections { await connection.close() }
            #expect(edges.originRequests("long_poll") == 1)
        }
    }

    @Test func concurrentMissesMakeOneUpstreamRead() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "shared")
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<50 { group.addTask { try await edges.request(.GET, "/v1/stream/a") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.text == "shared" })
            #expect(edges.originRequests("read") == 1)
        }
    }

    @Test func threeTiersCollapseToOneOriginRequest() async throws {
        try await withEdges(tiers: 3) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "deep")
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<100 { group.addTask { try await edges.request(.GET, "/v1/stream/a?offset=-1") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.text == "deep" && $0.status == 200 })
            #expect(edges.originRequests("read") == 1)
            #expect(edges.originRequests("create") == 1)
        }
    }

    @Test func aWaiterLeavingDoesNotCancelTheOthers() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/live", headers: [("Content-Type", "text/plain")])
            let path = "/v1/stream/live?offset=0000000000000000_0000000000000000&live=long-poll&cursor=3"
            let leaver = try await TestConnection.connect(port: edges.port)
            _ = leaver.send(.GET, path)
            let stayer = try await TestConnection.connect(port: edges.port)
            let poll = stayer.send(.GET, path)
            try await eventually { edges.origin.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
            await leaver.close()
            _ = try await edges.originRequest(.POST, "/v1/stream/live", headers: [("Content-Type", "text/plain")], body: "still")
            #expect(try await poll.get().text == "still")
            await stayer.close()
        }
    }

    /// Long-polls have a pool of their own: with one catch-up connection allowed, a parked
    /// long-poll must not hold up a catch-up read of another stream.
    @Test func catchUpReadsDoNotQueueBehindLongPolls() async throws {
        try await withEdges(origin: { $0.longPollTimeout = .seconds(30) }, edge: { $0.upstreamMaxConnections = 1; $0.upstreamTimeout = .seconds(5) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/live", headers: [("Content-Type", "text/plain")])
            _ = try await edges.request(.PUT, "/v1/stream/other", headers: [("Content-Type", "text/plain")], body: "ready")
            let connection = try await TestConnection.connect(port: edges.port)
            let poll = connection.send(.GET, "/v1/stream/live?offset=now&live=long-poll")
            try await eventually { edges.origin.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
            let read = try await edges.request(.GET, "/v1/stream/other")
            #expect(read.status == 200)
            #expect(read.text == "ready")
            _ = try await edges.originRequest(.POST, "/v1/stream/live", headers: [("Content-Type", "text/plain")], body: "x")
            #expect(try await poll.get().status == 200)
            await connection.close()
        }
    }

    @Test func theLastWaiterLeavingCancelsUpstream() async throws {
        try await withEdges(origin: { $0.longPollTimeout = .seconds(30) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/live", headers: [("Content-Type", "text/plain")])
            let connection = try await TestConnection.connect(port: edges.port)
            _ = connection.send(.GET, "/v1/stream/live?offset=now&live=long-poll")
            try await eventually { edges.origin.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
            await connection.close()
            try await eventually { edges.origin.metrics.registry.emitToString().contains("ds_origin_open_long_polls 0") }
        }
    }
}

@Suite("Edge: faults")
struct EdgeFaultTests {
    @Test func originDownServesCachedChunksAndFailsLiveFast() async throws {
        try await withEdges(origin: { $0.maxChunkBytes = 2 }, edge: { $0.upstreamConnectTimeout = .seconds(10) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "abcd")
            let chunk = try await edges.request(.GET, "/v1/stream/a")
            #expect(chunk.text == "ab")
            try await edges.origin.shutdown()
            let cached = try await edges.request(.GET, "/v1/stream/a")
            #expect(cached.status == 200)
            #expect(cached.text == "ab")
            let live = try await edges.request(.GET, "/v1/stream/a?offset=now&live=long-poll")
            #expect(live.status == 502 || live.status == 504)
            let again = try await edges.request(.GET, "/v1/stream/a?offset=now&live=long-poll")
            #expect(again.status == 502 || again.status == 504)  // errors are never cached, but still errors
        }
    }
}
