import EdgeNode
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import TestSupport
import Testing

/// The upstream failing and coming back: stale-if-error, errors never cached, recovery after an
/// origin restart, and the upstream pool's bound under a burst.
@Suite("Edge: fault recovery")
struct EdgeFaultRecoveryTests {
    static let tailControl = "public, max-age=1, stale-while-revalidate=0"

    /// Upstream down: a tail entry past its max-age is served STALE while within stale_if_error,
    /// then the client gets 502/504; immutable chunks keep being served throughout; the errors are
    /// not cached, and the edge recovers when the upstream returns on the same port.
    @Test func staleIfErrorWindowThenFailureThenRecovery() async throws {
        try await withFakeUpstream(edge: { $0.staleIfError = .seconds(5) }) { request in
            switch request.path {
            case "/v1/stream/chunk": return .read("immutable", next: 9, upToDate: false, cacheControl: "public, max-age=1")
            default: return .read("tail", next: 4, cacheControl: Self.tailControl, etag: "\"t1\"")
            }
        } _: { t in
            #expect(try await t.request(.GET, "/v1/stream/tail").header("X-Cache") == "MISS")
            #expect(try await t.request(.GET, "/v1/stream/chunk").header("X-Cache") == "MISS")
            await t.fake.stop()

            // Fresh: still a HIT with the upstream down; then past max-age: STALE (stale-if-error).
            #expect(try await t.request(.GET, "/v1/stream/tail").header("X-Cache") == "HIT")
            let stale = try await t.request(after: .seconds(2), "/v1/stream/tail")
            #expect(stale.status == 200)
            #expect(stale.header("X-Cache") == "STALE")
            #expect(stale.text == "tail")

            // Past max-age + stale_if_error: an error.
            let failed = try await t.request(after: .seconds(5), "/v1/stream/tail")
            #expect(failed.status == 502 || failed.status == 504)
            #expect(failed.header("X-Cache") == "PASS")
            #expect(failed.header("Cache-Control") == "no-store")

            // An immutable chunk is served whatever its max-age said, long after it.
            let chunk = try await t.request(.GET, "/v1/stream/chunk")
            #expect(chunk.status == 200)
            #expect(chunk.header("X-Cache") == "HIT")
            #expect(chunk.text == "immutable")

            // Reads of things never cached fail fast, and the failure is not cached either.
            #expect([502, 504].contains(try await t.request(.GET, "/v1/stream/other").status))
            let readsWhileDown = t.fake.requests.count

            try await t.fake.restart()
            let back = try await t.request(.GET, "/v1/stream/other")
            #expect(back.status == 200)
            #expect(back.header("X-Cache") == "MISS")
            let tail = try await t.request(.GET, "/v1/stream/tail")
            #expect(tail.status == 200)
            #expect(tail.text == "tail")
            #expect(["MISS", "REVALIDATED"].contains(tail.header("X-Cache")))
            #expect(t.fake.requests.count == readsWhileDown + 2)
        }
    }

    /// stale-if-error covers an upstream that answers 500/502/503/504 as well as one that cannot
    /// be reached (RFC 5861 §4) — which is what a shield edge in front of a dead origin answers.
    @Test
    func staleIfErrorCoversUpstream5xxAnswers() async throws {
        let failing = NIOLockedValueBox(false)
        try await withFakeUpstream(edge: { $0.staleIfError = .seconds(30) }) { _ in
            if failing.withLockedValue({ $0 }) {
                return FakeResponse(status: .serviceUnavailable, headers: [("Content-Type", "text/plain"), ("Cache-Control", "no-store")], body: "down")
            }
            return .read("tail", next: 4, cacheControl: Self.tailControl, etag: "\"t1\"")
        } _: { t in
            #expect(try await t.request(.GET, "/v1/stream/tail").header("X-Cache") == "MISS")
            failing.withLockedValue { $0 = true }
            let response = try await t.request(after: .seconds(2), "/v1/stream/tail")
            #expect(t.fake.requests.count == 2)  // it did ask, and was told 503
            #expect(response.status == 200)
            #expect(response.header("X-Cache") == "STALE")
            #expect(response.text == "tail")
        }
    }

    /// The origin is killed and a new one started on the same port: the edge needs no help.
    /// Meanwhile cached chunks are served and live reads fail fast; afterwards writes, catch-up
    /// reads, long-polls and SSE all work through the edge again.
    @Test func edgeRecoversWhenTheOriginRestartsOnTheSamePort() async throws {
        var originConfiguration = OriginConfiguration()
        originConfiguration.longPollTimeout = .seconds(30)
        originConfiguration.maxChunkBytes = 2
        let first = try await withPortOutsideEphemeralRange { port in
            originConfiguration.port = port
            let server = OriginServer(configuration: originConfiguration, group: MultiThreadedEventLoopGroup.singleton)
            try await server.start()
            return server
        }
        let port = try #require(first.port)

        var edgeConfiguration = EdgeConfiguration()
        edgeConfiguration.port = 0
        edgeConfiguration.upstreamPort = port
        edgeConfiguration.upstreamConnectTimeout = .seconds(10)  // a stopped origin refuses at once
        let edge = EdgeServer(configuration: edgeConfiguration, group: MultiThreadedEventLoopGroup.singleton)
        try await edge.start()
        let edgePort = try #require(edge.port)
        func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
            try await TestHTTP.request(port: edgePort, method, path, headers: headers, body: body.map { Array($0.utf8) })
        }
        var second: OriginServer?
        do {
            #expect(try await request(.PUT, "/v1/stream/before", headers: [("Content-Type", "text/plain")], body: "abcd").status == 201)
            #expect(try await request(.GET, "/v1/stream/before").text == "ab")
            // An SSE client attached through the edge before the origin goes away.
            let sse = try await SSEReader.open(port: edgePort, "/v1/stream/before?offset=-1&live=sse")
            let sseConnection = sse.connection
            let watchdog = Task {
                try? await Task.sleep(for: .seconds(10))
                await sseConnection.close()  // bounds every `next()` below
            }
            var seen = ""
            for _ in 0..<20 where seen != "abcd" {
                guard let event = await sse.next() else { break }
                if event.event == "data" { seen += event.data }
            }
            #expect(seen == "abcd")

            try await first.shutdown()
            #expect(try await request(.GET, "/v1/stream/before").text == "ab")  // a cached full chunk
            #expect([502, 504].contains(try await request(.POST, "/v1/stream/before", headers: [("Content-Type", "text/plain")], body: "x").status))
            #expect([502, 504].contains(try await request(.GET, "/v1/stream/before?offset=now&live=long-poll").status))

            originConfiguration.port = port
            // Same port, same (durable) data: the new process finds the streams the old one had.
            let restarted = OriginServer(configuration: originConfiguration, store: first.store, group: MultiThreadedEventLoopGroup.singleton)
            second = restarted
            try await restarted.start()
            #expect(restarted.port == port)

            // The SSE client is still attached and sees what is appended after the restart.
            #expect(try await request(.POST, "/v1/stream/before", headers: [("Content-Type", "text/plain")], body: "e").status == 204)
            var after = ""
            for _ in 0..<20 where after != "e" {
                guard let event = await sse.next() else { break }
                if event.event == "data" { after += event.data }
            }
            #expect(after == "e")
            watchdog.cancel()
            await sse.close()

            let create = try await request(.PUT, "/v1/stream/after", headers: [("Content-Type", "text/plain")], body: "xy")
            #expect(create.status == 201)
            #expect(create.header("X-Cache") == "PASS")
            #expect(try await request(.POST, "/v1/stream/after", headers: [("Content-Type", "text/plain")], body: "z").status == 204)
            let read = try await request(.GET, "/v1/stream/after?offset=\(FakeResponse.offset(2))")
            #expect(read.status == 200)
            #expect(read.text == "z")
            #expect(read.header("X-Cache") == "MISS")
            #expect(try await request(.GET, "/v1/stream/after?offset=\(FakeResponse.offset(2))").header("X-Cache") == "HIT")

            // A long-poll parked through the edge is woken by an append.
            let connection = try await TestConnection.connect(port: edgePort)
            let poll = connection.send(.GET, "/v1/stream/after?offset=\(FakeResponse.offset(3))&live=long-poll&cursor=1")
            try await eventually { restarted.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
            #expect(try await request(.POST, "/v1/stream/after", headers: [("Content-Type", "text/plain")], body: "w").status == 204)
            let woken = try await poll.get()
            await connection.close()
            #expect(woken.status == 200)
            #expect(woken.text == "w")

            // A new SSE client through the edge.
            let reader = try await SSEReader.open(port: edgePort, "/v1/stream/after?offset=-1&live=sse")
            let readerConnection = reader.connection
            let readerWatchdog = Task {
                try? await Task.sleep(for: .seconds(10))
                await readerConnection.close()
            }
            var payload = ""
            for _ in 0..<20 where payload != "xyzw" {
                guard let event = await reader.next() else { break }
                if event.event == "data" { payload += event.data }
            }
            readerWatchdog.cancel()
            await reader.close()
            #expect(payload == "xyzw")
        } catch {
            Issue.record(error)
        }
        try? await edge.shutdown()
        try? await second?.shutdown()
        try? await first.shutdown()
    }

    /// 2,000 concurrent catch-up reads of different keys through an edge limited to 4 upstream
    /// connections: every one succeeds, and the origin never sees more than 4 (+1 slack for a
    /// connection closing while its replacement opens) edge connections.
    @Test func burstOfDistinctReadsStaysWithinTheUpstreamConnectionLimit() async throws {
        raiseFileLimit()
        try await withEdges(edge: { $0.upstreamMaxConnections = 4 }) { edges in
            let streams = 20
            let length = 100
            for index in 0..<streams {
                let body = String(repeating: String(index % 10), count: length)
                let created = try await edges.originRequest(.PUT, "/v1/stream/burst\(index)", headers: [("Content-Type", "text/plain")], body: body)
                try #require(created.status == 201)
            }
            func openConnections() -> Int {
                let line = edges.origin.metrics.registry.emitToString().split(separator: "\n")
                    .first { $0.hasPrefix("ds_origin_open_connections ") }
                return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) } ?? -1
            }
            try await eventually { openConnections() == 0 }

            let done = NIOLockedValueBox(false)
            let sampler = Task {
                var peak = 0
                var samples = 0
                while !done.withLockedValue({ $0 }) {
                    peak = max(peak, openConnections())
                    samples += 1
                    try? await Task.sleep(for: .milliseconds(5))
                }
                return (peak, samples)
            }
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<(streams * length) {
                    let stream = index % streams
                    let position = index / streams
                    let expected = String(repeating: String(stream % 10), count: length - position)
                    group.addTask {
                        let response = try await edges.request(.GET, "/v1/stream/burst\(stream)?offset=\(FakeResponse.offset(position))")
                        return response.status == 200 && response.text == expected && response.header("X-Cache") == "MISS"
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            done.withLockedValue { $0 = true }
            let (peak, samples) = await sampler.value
            #expect(results.count == 2_000)
            #expect(results.allSatisfy { $0 })
            #expect(samples > 10)
            #expect(peak >= 1)
            #expect(peak <= 5)
            #expect(edges.originRequests("read") == 2_000)
        }
    }
}
