@testable import EdgeNode
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import Testing

/// `UpstreamClient` over real sockets, against an origin running in-process.
@Suite("Upstream client")
struct UpstreamClientTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    // MARK: Requests and responses

    @Test func roundTripCarriesMethodBodyStatusAndHeaders() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 2)
            let path = Self.uniquePath()
            let created = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")])
            #expect(created.head.status == .created)
            let appended = try await Self.send(client, .POST, path, headers: [("Content-Type", "text/plain")], body: "hello world")
            #expect(appended.head.status == .noContent)
            #expect(appended.head.headers.first(name: "Stream-Next-Offset") != nil)

            let loop = Self.group.next()
            let future = client.execute(Self.head(.GET, path + "?offset=-1"), body: nil, timeout: .seconds(10), on: loop)
            #expect(future.eventLoop === loop)
            let read = try await future.get()
            #expect(read.head.status == .ok)
            #expect(String(buffer: read.body) == "hello world")
            #expect(read.head.headers.first(name: "Stream-Up-To-Date") == "true")

            let missing = try await Self.send(client, .GET, "/v1/stream/missing-\(UInt64.random(in: 0...UInt64.max))?offset=-1")
            #expect(missing.head.status == .notFound)
            #expect(missing.body.readableBytes > 0)
            await client.shutdown()
        }
    }

    @Test func largeBodiesArriveWhole() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "application/octet-stream")])
            var bytes = [UInt8](repeating: 0, count: 1 << 20)
            for index in stride(from: 0, to: bytes.count, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index >> 12) }
            let appended = try await client.execute(
                Self.head(.POST, path, [("Content-Type", "application/octet-stream")]), body: ByteBuffer(bytes: bytes),
                timeout: .seconds(10), on: Self.group.next()
            ).get()
            #expect(appended.head.status == .noContent)
            let read = try await Self.send(client, .GET, path + "?offset=-1")
            #expect(read.body.getBytes(at: read.body.readerIndex, length: read.body.readableBytes) == bytes)
            await client.shutdown()
        }
    }

    @Test func headResponsesHaveNoBodyAndTheConnectionStaysUsable() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            // The origin answers HEAD /healthz with the GET's Content-Length (3) and no body: a
            // decoder that did not know the method would wait for 3 bytes, or eat the next response.
            let head = try await Self.send(client, .HEAD, "/healthz")
            #expect(head.head.status == .ok)
            #expect(head.head.headers.first(name: "Content-Length") == "3")
            #expect(head.body.readableBytes == 0)
            let get = try await Self.send(client, .GET, "/healthz")
            #expect(String(buffer: get.body) == "ok\n")

            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "abc")
            let info = try await Self.send(client, .HEAD, path)
            #expect(info.head.status == .ok)
            #expect(info.head.headers.first(name: "Stream-Next-Offset") != nil)
            #expect(info.body.readableBytes == 0)
            #expect(String(buffer: try await Self.send(client, .GET, path + "?offset=-1").body) == "abc")
            #expect(client.poolStats.open == 1)
            #expect(client.peakConnections == 1)
            await client.shutdown()
        }
    }

    // MARK: Pooling

    @Test func sequentialRequestsReuseOneKeepAliveConnection() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "x")
            for _ in 0..<200 {
                let response = try await Self.send(client, .GET, path + "?offset=-1")
                #expect(response.head.status == .ok)
                #expect(client.poolStats.open == 1)
            }
            #expect(client.poolStats == (open: 1, idle: 1, queued: 0))
            #expect(client.peakConnections == 1)
            #expect(Self.gauge(origin, "ds_origin_open_connections") == 1)
            await client.shutdown()
            #expect(client.poolStats == (open: 0, idle: 0, queued: 0))
        }
    }

    @Test func connectionCloseResponseIsNotReused() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let response = try await Self.send(client, .GET, "/healthz", headers: [("Connection", "close")])
            #expect(response.head.headers.first(name: "Connection") == "close")
            try await Self.eventually("the closed connection leaves the pool") { client.poolStats.open == 0 }
            #expect(String(buffer: try await Self.send(client, .GET, "/healthz").body) == "ok\n")
            #expect(client.poolStats.open == 1)
            await client.shutdown()
        }
    }

    @Test func burstOfConcurrentRequestsNeverExceedsMaxConnections() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 4)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "burst")

            let done = NIOLockedValueBox(false)
            let sampler = Task {
                var maxPool = 0
                var maxOrigin = 0.0
                while !done.withLockedValue({ $0 }) {
                    maxPool = max(maxPool, client.poolStats.open)
                    maxOrigin = max(maxOrigin, Self.gauge(origin, "ds_origin_open_connections"))
                    try? await Task.sleep(for: .milliseconds(1))
                }
                return (maxPool, maxOrigin)
            }
            let futures = (0..<500).map { _ in
                client.execute(Self.head(.GET, path + "?offset=-1"), body: nil, timeout: .seconds(30), on: Self.group.next())
            }
            var statuses: [HTTPResponseStatus] = []
            for future in futures {
                let response = try await future.get()
                #expect(String(buffer: response.body) == "burst")
                statuses.append(response.head.status)
            }
            done.withLockedValue { $0 = true }
            let (maxPool, maxOrigin) = await sampler.value
            #expect(statuses.count == 500)
            #expect(statuses.allSatisfy { $0 == .ok })
            #expect(client.peakConnections <= 4)
            #expect(maxPool <= 4)
            #expect(maxOrigin <= 4)
            let stats = client.poolStats
            #expect(stats.open <= 4 && stats.open >= 1)
            #expect(stats.idle == stats.open)
            #expect(stats.queued == 0)
            // The origin's own count, over HTTP: the pool's connections plus the metrics one.
            let metrics = try await Self.send(client, .GET, "/metrics")
            let served = Self.metric(String(buffer: metrics.body), "ds_origin_open_connections")
            #expect(served <= 4)
            await client.shutdown()
        }
    }

    @Test func fullQueueFailsFastAndShutdownFailsEverythingPending() async throws {
        try await Self.withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { origin in
            let client = UpstreamClient(
                host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1, maxQueued: 2)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")])
            let poll = Self.head(.GET, path + "?offset=now&live=long-poll")
            let held = client.execute(poll, body: nil, timeout: .seconds(60), on: Self.group.next())
            try await Self.eventually("the long-poll is parked at the origin") { Self.gauge(origin, "ds_origin_open_long_polls") == 1 }
            let queued = (0..<2).map { _ in client.execute(poll, body: nil, timeout: .seconds(60), on: Self.group.next()) }
            #expect(client.poolStats.queued == 2)
            await Self.expectFailure(.poolQueueFull) {
                _ = try await client.execute(poll, body: nil, timeout: .seconds(60), on: Self.group.next()).get()
            }

            await client.shutdown()
            await Self.expectFailure(.shutdown) { _ = try await held.get() }
            for future in queued { await Self.expectFailure(.shutdown) { _ = try await future.get() } }
            await Self.expectFailure(.shutdown) { _ = try await Self.send(client, .GET, "/healthz") }
            #expect(client.poolStats == (open: 0, idle: 0, queued: 0))
            try await Self.eventually("the origin sees the long-poll go") { Self.gauge(origin, "ds_origin_open_long_polls") == 0 }
        }
    }

    // MARK: Failures

    @Test func timeoutFailsTheRequestAndClosesItsConnection() async throws {
        try await Self.withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")])
            await Self.expectFailure(.timedOut) {
                _ = try await Self.send(client, .GET, path + "?offset=now&live=long-poll", timeout: .milliseconds(300))
            }
            try await Self.eventually("the timed-out connection is closed") { client.poolStats.open == 0 }
            try await Self.eventually("the origin drops the abandoned long-poll") {
                Self.gauge(origin, "ds_origin_open_long_polls") == 0 && Self.gauge(origin, "ds_origin_open_connections") == 0
            }
            // The slot is free again.
            #expect(try await Self.send(client, .GET, path + "?offset=-1").head.status == .ok)
            await client.shutdown()
        }
    }

    @Test func timeoutWhileQueuedLeavesTheQueue() async throws {
        try await Self.withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")])
            let cancellation = UpstreamCancellation()
            let held = client.execute(
                Self.head(.GET, path + "?offset=now&live=long-poll"), body: nil, timeout: .seconds(60), on: Self.group.next(),
                cancellation: cancellation)
            try await Self.eventually("the long-poll is parked at the origin") { Self.gauge(origin, "ds_origin_open_long_polls") == 1 }
            await Self.expectFailure(.timedOut) {
                _ = try await Self.send(client, .GET, "/healthz", timeout: .milliseconds(200))
            }
            #expect(client.poolStats.queued == 0)
            // The held request was untouched by its neighbour's timeout.
            #expect(client.poolStats.open == 1)
            cancellation.cancel()
            await Self.expectFailure(.connectionClosed) { _ = try await held.get() }
            await client.shutdown()
        }
    }

    @Test func closedPortFailsFastWithConnectFailed() async throws {
        let port = try await Self.closedPort()
        let client = UpstreamClient(
            host: "127.0.0.1", port: port, group: Self.group, maxConnections: 1, connectTimeout: .seconds(10))
        await Self.expectFailure(.connectFailed) {
            _ = try await Self.send(client, .GET, "/healthz", timeout: .seconds(20))
        }
        // Several waiting at once: each gets the connect error (a request that waited for its
        // timeout would fail with .timedOut instead).
        let futures = (0..<5).map { _ in
            client.execute(Self.head(.GET, "/healthz"), body: nil, timeout: .seconds(20), on: Self.group.next())
        }
        for future in futures { await Self.expectFailure(.connectFailed) { _ = try await future.get() } }
        #expect(client.poolStats == (open: 0, idle: 0, queued: 0))
        #expect(client.peakConnections == 1)
        await client.shutdown()
    }

    @Test func recoversWhenTheOriginRestartsOnTheSamePort() async throws {
        var configuration = OriginConfiguration()
        let first = try await withPortOutsideEphemeralRange { port in
            configuration.port = port
            let server = OriginServer(configuration: configuration, group: Self.group)
            try await server.start()
            return server
        }
        let port = first.port!
        let client = UpstreamClient(host: "127.0.0.1", port: port, group: Self.group, maxConnections: 2)
        let path = Self.uniquePath()
        _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "before")
        // Two idle connections.
        async let a = Self.send(client, .GET, "/healthz")
        async let b = Self.send(client, .GET, "/healthz")
        _ = try await (a, b)
        #expect(client.poolStats.idle >= 1)

        try await first.shutdown(gracePeriod: .seconds(2))
        try await Self.eventually("idle connections closed by the server are dropped") { client.poolStats.open == 0 }

        configuration.port = port
        let second = OriginServer(configuration: configuration, group: Self.group)
        try await second.start()
        let created = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "after")
        #expect(created.head.status == .created)  // a new, empty store
        #expect(String(buffer: try await Self.send(client, .GET, path + "?offset=-1").body) == "after")
        await client.shutdown()
        try await second.shutdown(gracePeriod: .seconds(2))
    }

    @Test func safeRequestOnAStaleReusedConnectionIsSentAgain() async throws {
        // A server that answers the first request on each connection and closes the connection,
        // without answering, when a second one arrives: what a keep-alive timeout race looks like.
        let server = try await FlakyServer.start()
        let client = UpstreamClient(host: "127.0.0.1", port: server.port, group: Self.group, maxConnections: 1)
        #expect(String(buffer: try await Self.send(client, .GET, "/a").body) == "answer 1")
        #expect(client.poolStats.idle == 1)
        // Reuses the connection, loses it, and goes again on a fresh one.
        #expect(String(buffer: try await Self.send(client, .GET, "/b").body) == "answer 2")
        #expect(server.connections == 2)
        // A POST is not repeated: it may have been processed.
        await Self.expectFailure(.connectionClosed) {
            _ = try await Self.send(client, .POST, "/c", body: "x")
        }
        #expect(server.connections == 2)
        await client.shutdown()
        await server.stop()
    }

    // MARK: Cancellation

    @Test func cancellingAnInFlightLongPollFreesTheSlot() async throws {
        try await Self.withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "x")
            let cancellation = UpstreamCancellation()
            let poll = client.execute(
                Self.head(.GET, path + "?offset=now&live=long-poll"), body: nil, timeout: .seconds(60), on: Self.group.next(),
                cancellation: cancellation)
            try await Self.eventually("the long-poll is parked at the origin") { Self.gauge(origin, "ds_origin_open_long_polls") == 1 }
            // A second request waits for the only connection.
            let waiting = client.execute(Self.head(.GET, path + "?offset=-1"), body: nil, timeout: .seconds(20), on: Self.group.next())
            #expect(client.poolStats.queued == 1)
            cancellation.cancel()
            await Self.expectFailure(.connectionClosed) { _ = try await poll.get() }
            // The waiting request gets a (new) connection at once, long before the long-poll's timeout.
            #expect(try await waiting.get().head.status == .ok)
            try await Self.eventually("the origin drops the abandoned long-poll") { Self.gauge(origin, "ds_origin_open_long_polls") == 0 }
            #expect(client.peakConnections == 1)
            await client.shutdown()
        }
    }

    @Test func cancellingAQueuedRequestRemovesItAndEarlyCancelFailsAtOnce() async throws {
        try await Self.withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")])
            let heldCancellation = UpstreamCancellation()
            let held = client.execute(
                Self.head(.GET, path + "?offset=now&live=long-poll"), body: nil, timeout: .seconds(60), on: Self.group.next(),
                cancellation: heldCancellation)
            try await Self.eventually("the long-poll is parked at the origin") { Self.gauge(origin, "ds_origin_open_long_polls") == 1 }

            let queuedCancellation = UpstreamCancellation()
            let queued = client.execute(
                Self.head(.GET, "/healthz"), body: nil, timeout: .seconds(60), on: Self.group.next(), cancellation: queuedCancellation)
            #expect(client.poolStats.queued == 1)
            queuedCancellation.cancel()
            await Self.expectFailure(.connectionClosed) { _ = try await queued.get() }
            #expect(client.poolStats.queued == 0)
            #expect(Self.gauge(origin, "ds_origin_open_long_polls") == 1)  // the held one is untouched

            let early = UpstreamCancellation()
            early.cancel()
            await Self.expectFailure(.connectionClosed) {
                _ = try await Self.send(client, .GET, "/healthz", cancellation: early)
            }
            heldCancellation.cancel()
            await Self.expectFailure(.connectionClosed) { _ = try await held.get() }
            await client.shutdown()
        }
    }

    // MARK: Streaming

    @Test func streamDeliversSSEAsItArrivesAndCancelStopsIt() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "hello")
            let loop = Self.group.next()
            let recorder = StreamRecorder(loop: loop)
            let stream = recorder.start(client, Self.head(.GET, path + "?offset=-1&live=sse"))
            try await Self.eventually("the first event arrives") { recorder.text.contains("event: data\ndata:hello") }
            #expect(recorder.head?.status == .ok)
            #expect(recorder.head?.headers.first(name: "Content-Type") == "text/event-stream")
            #expect(recorder.text.contains("event: control"))
            #expect(Self.gauge(origin, "ds_origin_open_sse_connections") == 1)
            // The stream's connection is not the pool's.
            #expect(client.poolStats.open == 1)

            _ = try await Self.send(client, .POST, path, headers: [("Content-Type", "text/plain")], body: "world")
            try await Self.eventually("a later append arrives") { recorder.text.contains("data:world") }

            stream.cancel()
            try await Self.eventually("onEnd follows the cancel") { recorder.ends.count == 1 }
            #expect((recorder.ends.first ?? nil) != nil)
            try await Self.eventually("the origin's SSE response is gone") { Self.gauge(origin, "ds_origin_open_sse_connections") == 0 }
            stream.cancel()
            #expect(!recorder.offLoop)
            #expect(recorder.headCount == 1)
            await client.shutdown()
            #expect(recorder.ends.count == 1)
        }
    }

    @Test func streamEndsCleanlyWhenTheServerEndsIt() async throws {
        try await Self.withOrigin(configure: { $0.sseReconnectInterval = .milliseconds(300) }) { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "hello")
            let recorder = StreamRecorder(loop: Self.group.next())
            _ = recorder.start(client, Self.head(.GET, path + "?offset=-1&live=sse"))
            try await Self.eventually("the origin ends the SSE response") { recorder.ends.count == 1 }
            #expect(recorder.text.contains("data:hello"))
            #expect(recorder.ends.count == 1)
            #expect((recorder.ends.first ?? nil) == nil)

            // A non-SSE answer streams too, and ends.
            let missing = StreamRecorder(loop: Self.group.next())
            _ = missing.start(client, Self.head(.GET, "/v1/stream/none-\(UInt64.random(in: 0...UInt64.max))?offset=-1&live=sse"))
            try await Self.eventually("the 404 ends") { missing.ends.count == 1 }
            #expect(missing.head?.status == .notFound)
            #expect((missing.ends.first ?? nil) == nil)
            await client.shutdown()
        }
    }

    @Test func streamToAClosedPortEndsWithConnectFailed() async throws {
        let port = try await Self.closedPort()
        let client = UpstreamClient(host: "127.0.0.1", port: port, group: Self.group, maxConnections: 1)
        let recorder = StreamRecorder(loop: Self.group.next())
        _ = recorder.start(client, Self.head(.GET, "/v1/stream/x?offset=-1&live=sse"))
        try await Self.eventually("onEnd reports the connect failure") { recorder.ends.count == 1 }
        let error = (recorder.ends.first ?? nil) as? UpstreamError
        #expect(error?.kind == .connectFailed)
        #expect(recorder.head == nil)
        await client.shutdown()
    }

    @Test func shutdownEndsStreams() async throws {
        try await Self.withOrigin { origin in
            let client = UpstreamClient(host: "127.0.0.1", port: origin.port!, group: Self.group, maxConnections: 1)
            let path = Self.uniquePath()
            _ = try await Self.send(client, .PUT, path, headers: [("Content-Type", "text/plain")], body: "hello")
            let recorder = StreamRecorder(loop: Self.group.next())
            _ = recorder.start(client, Self.head(.GET, path + "?offset=-1&live=sse"))
            try await Self.eventually("the first event arrives") { recorder.text.contains("data:hello") }
            await client.shutdown()
            try await Self.eventually("onEnd after shutdown") { recorder.ends.count == 1 }
            #expect(((recorder.ends.first ?? nil) as? UpstreamError)?.kind == .shutdown)
            try await Self.eventually("the origin's SSE response is gone") { Self.gauge(origin, "ds_origin_open_sse_connections") == 0 }
            // Streams after shutdown end at once.
            let late = StreamRecorder(loop: Self.group.next())
            _ = late.start(client, Self.head(.GET, path + "?offset=-1&live=sse"))
            try await Self.eventually("a late stream ends") { late.ends.count == 1 }
            #expect(((late.ends.first ?? nil) as? UpstreamError)?.kind == .shutdown)
        }
    }
}

// MARK: - Helpers

extension UpstreamClientTests {
    static func withOrigin(
        configure: (inout OriginConfiguration) -> Void = { _ in }, _ body: (OriginServer) async throws -> Void
    ) async throws {
        var configuration = OriginConfiguration()
        configuration.port = 0
        configure(&configuration)
        let origin = OriginServer(configuration: configuration, group: group)
        try await origin.start()
        do {
            try await body(origin)
        } catch {
            try? await origin.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        try await origin.shutdown(gracePeriod: .seconds(1))
    }

    static func uniquePath() -> String {
        "/v1/stream/upstream-\(UInt64.random(in: 0...UInt64.max))"
    }

    static func head(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static func send(
        _ client: UpstreamClient, _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: TimeAmount = .seconds(10), cancellation: UpstreamCancellation? = nil
    ) async throws -> UpstreamResponse {
        try await client.execute(
            head(method, uri, headers), body: body.map { ByteBuffer(string: $0) }, timeout: timeout, on: group.next(),
            cancellation: cancellation
        ).get()
    }

    static func expectFailure(
        _ kind: UpstreamError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected \(kind), got success", sourceLocation: sourceLocation)
        } catch let error as UpstreamError {
            #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected \(kind), got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Polls `condition` until it holds; records an issue after `timeout`.
    static func eventually(
        _ what: String, timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
    }

    /// A gauge from the origin's registry, read in-process.
    static func gauge(_ origin: OriginServer, _ name: String) -> Double {
        metric(origin.metrics.registry.emitToString(), name)
    }

    static func metric(_ text: String, _ name: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? .nan
        }
        return 0
    }

    /// A port nothing listens on.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}

extension UpstreamClientTests {
    /// Records a stream's callbacks, and whether any ran off the loop it was given.
    final class StreamRecorder: Sendable {
        let loop: any EventLoop
        private let state = NIOLockedValueBox(State())

        private struct State {
            var head: HTTPResponseHead?
            var headCount = 0
            var text = ""
            var ends: [(any Error)?] = []
            var offLoop = false
        }

        init(loop: any EventLoop) { self.loop = loop }

        var head: HTTPResponseHead? { state.withLockedValue { $0.head } }
        var headCount: Int { state.withLockedValue { $0.headCount } }
        var text: String { state.withLockedValue { $0.text } }
        var ends: [(any Error)?] { state.withLockedValue { $0.ends } }
        var offLoop: Bool { state.withLockedValue { $0.offLoop } }

        func start(_ client: UpstreamClient, _ head: HTTPRequestHead) -> UpstreamStream {
            let loop = self.loop
            return client.stream(
                head, on: loop,
                onHead: { head in
                    self.state.withLockedValue {
                        $0.head = head
                        $0.headCount += 1
                        $0.offLoop = $0.offLoop || !loop.inEventLoop || !$0.ends.isEmpty
                    }
                },
                onBody: { body in
                    self.state.withLockedValue {
                        $0.text += String(buffer: body)
                        $0.offLoop = $0.offLoop || !loop.inEventLoop || !$0.ends.isEmpty
                    }
                },
                onEnd: { error in
                    self.state.withLockedValue {
                        $0.ends.append(error)
                        $0.offLoop = $0.offLoop || !loop.inEventLoop
                    }
                })
        }
    }

    /// Answers the first request on each connection ("answer N" for the Nth connection) with
    /// keep-alive, and closes the connection without answering when a second request arrives.
    final class FlakyServer: Sendable {
        let channel: any Channel
        private let accepted: NIOLockedValueBox<Int>

        var port: Int { channel.localAddress!.port! }
        var connections: Int { accepted.withLockedValue { $0 } }

        private init(channel: any Channel, accepted: NIOLockedValueBox<Int>) {
            self.channel = channel
            self.accepted = accepted
        }

        static func start() async throws -> FlakyServer {
            let accepted = NIOLockedValueBox(0)
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    let number = accepted.withLockedValue { count in
                        count += 1
                        return count
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Handler(number: number))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return FlakyServer(channel: channel, accepted: accepted)
        }

        func stop() async {
            try? await channel.close()
        }

        final class Handler: ChannelInboundHandler {
            typealias InboundIn = HTTPServerRequestPart
            typealias OutboundOut = HTTPServerResponsePart
            let number: Int
            var requests = 0

            init(number: Int) { self.number = number }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                guard case .end = unwrapInboundIn(data) else { return }
                requests += 1
                guard requests == 1 else {
                    context.close(promise: nil)
                    return
                }
                let body = ByteBuffer(string: "answer \(number)")
                let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": String(body.readableBytes)])
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
