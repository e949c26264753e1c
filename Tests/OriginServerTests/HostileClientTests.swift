import EdgeNode
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import ServerSupport
import TestSupport
import Testing

/// Which server faces the hostile client.
enum FrontServer: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case origin, edge
    var testDescription: String { rawValue }
}

/// An origin, and an edge in front of it when the edge is the one under test; `limits` apply
/// to whichever faces the client.
struct FrontFixture {
    let origin: OriginServer
    let edge: EdgeServer?

    var port: Int { edge?.port ?? origin.port! }
    var refusedConnections: Int { edge?.refusedConnections ?? origin.refusedConnections }
    var openConnections: Int { edge?.openConnections ?? origin.openConnections }
    var requestBodyBytesInFlight: Int { edge?.requestBodyBytesInFlight ?? origin.requestBodyBytesInFlight }
    /// The front server's Prometheus text, and its metric names' prefix.
    var metricsText: String { edge?.metrics.registry.emitToString() ?? origin.metrics.registry.emitToString() }
    var metricsPrefix: String { edge == nil ? "ds_origin_" : "ds_edge_" }

    func queuedResponseBytes() async -> Int {
        if let edge { return await edge.queuedResponseBytes() }
        return await origin.queuedResponseBytes()
    }

    /// Waits until the server holds response bytes for a client, then samples what it holds
    /// twenty times, 10 ms apart, and returns the most. Only an upper bound is asserted on it,
    /// so how fast the machine is cannot decide the outcome.
    func largestQueuedResponseBytes() async throws -> Int {
        try await waitUntil { await queuedResponseBytes() > 0 }
        var largest = 0
        for _ in 0..<20 {
            largest = max(largest, await queuedResponseBytes())
            try await Task.sleep(for: .milliseconds(10))
        }
        return largest
    }
}

func withFront<T>(
    _ front: FrontServer, limits: ConnectionLimits, configureOrigin: (inout OriginConfiguration) -> Void = { _ in },
    _ body: (FrontFixture) async throws -> T
) async throws -> T {
    var originConfiguration = OriginConfiguration()
    originConfiguration.port = 0
    if front == .origin { originConfiguration.limits = limits }
    configureOrigin(&originConfiguration)
    let origin = OriginServer(configuration: originConfiguration, group: MultiThreadedEventLoopGroup.singleton)
    try await origin.start()
    var edge: EdgeServer?
    if front == .edge {
        var configuration = EdgeConfiguration()
        configuration.port = 0
        configuration.upstreamPort = origin.port!
        configuration.upstreamConnectTimeout = .seconds(10)  // a loaded CI machine is slow, not down
        configuration.upstreamTimeout = .seconds(60)
        configuration.limits = limits
        edge = EdgeServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        try await edge!.start()
    }
    do {
        let result = try await body(FrontFixture(origin: origin, edge: edge))
        try await edge?.shutdown()
        try await origin.shutdown()
        return result
    } catch {
        try? await edge?.shutdown()
        try? await origin.shutdown()
        throw error
    }
}

/// What a single client can do to a server, over real sockets, against the origin and the edge
/// alike. Timeouts are configured short so that the tests take a fraction of a second; nothing
/// here asserts how long anything took.
@Suite("Hostile clients: timeouts, caps and budgets")
struct HostileClientTests {
    static var short: ConnectionLimits {
        var limits = ConnectionLimits()
        limits.headerTimeout = .milliseconds(200)
        limits.idleTimeout = .milliseconds(200)
        limits.bodyTimeout = .milliseconds(200)
        limits.sendTimeout = .milliseconds(500)
        return limits
    }

    /// Short request timeouts, and a long idle timeout so that a slow machine does not close
    /// the connection before the test has sent its first bytes.
    static var shortRequest: ConnectionLimits {
        var limits = short
        limits.idleTimeout = .seconds(600)
        return limits
    }

    @Test(arguments: FrontServer.allCases)
    func slowlorisHeadGets408AndIsClosed(front: FrontServer) async throws {
        try await withFront(front, limits: Self.shortRequest) { server in
            let client = try await RawConnection.connect(port: server.port)
            try await client.send("GET /v1/stream/x HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
            #expect(try await client.closedByServer())
            #expect(client.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        }
    }

    @Test(arguments: FrontServer.allCases)
    func idleConnectionsAreClosed(front: FrontServer) async throws {
        try await withFront(front, limits: Self.short) { server in
            let silent = try await RawConnection.connect(port: server.port)
            #expect(try await silent.closedByServer())
            #expect(silent.text.isEmpty)
            #expect(server.metricsText.contains(server.metricsPrefix + "connections_timed_out_total{reason=\"idle\"} 1"))
            // (Idling after a keep-alive response is covered on an embedded loop, whose clock
            // the test controls: here the first request could lose the race with 200 ms.)
        }
    }

    @Test(arguments: FrontServer.allCases)
    func connectionsBeyondTheCapAreClosedAtOnce(front: FrontServer) async throws {
        var limits = ConnectionLimits()
        limits.maxConnections = 3
        try await withFront(front, limits: limits) { server in
            var held: [TestConnection] = []
            for _ in 0..<3 {
                let connection = try await TestConnection.connect(port: server.port)
                #expect(try await connection.request(.GET, "/v1/stream/none?offset=-1").status == 404)
                held.append(connection)
            }
            let refused = try await RawConnection.connect(port: server.port)
            #expect(try await refused.closedByServer())
            #expect(refused.text.isEmpty)
            #expect(server.refusedConnections >= 1)
            #expect(server.metricsText.contains(server.metricsPrefix + "connections_refused_total \(server.refusedConnections)"))
            // Room again once one leaves.
            await held.removeFirst().close()
            try await waitUntil { server.openConnections < 3 }
            try await waitUntil {
                (try? await TestHTTP.request(port: server.port, .GET, "/v1/stream/none?offset=-1").status) == 404
            }
            for connection in held { await connection.close() }
        }
    }

    @Test(arguments: FrontServer.allCases)
    func stalledUploadsShareOneBudgetAndAreCut(front: FrontServer) async throws {
        var limits = ConnectionLimits()
        limits.maxRequestBytesInFlight = 64 << 10
        limits.bodyTimeout = .seconds(600)  // held until the test lets go
        try await withFront(front, limits: limits) { server in
            let path = "/v1/stream/budget-\(UInt64.random(in: 0...UInt64.max))"
            #expect(try await TestHTTP.request(port: server.port, .PUT, path, headers: [("Content-Type", "text/plain")]).status == 201)
            let stalled = try await RawConnection.connect(port: server.port)
            try await stalled.send(
                "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"
                    + String(repeating: "a", count: 60 << 10))
            try await waitUntil { server.requestBodyBytesInFlight >= 60 << 10 }
            // Another upload that does not fit beside it is refused, not queued.
            let refused = try await TestHTTP.request(
                port: server.port, .POST, path, headers: [("Content-Type", "text/plain")], body: Array(repeating: 98, count: 8 << 10))
            #expect(refused.status == 503)
            await stalled.close()
            try await waitUntil { server.requestBodyBytesInFlight == 0 }
            let accepted = try await TestHTTP.request(
                port: server.port, .POST, path, headers: [("Content-Type", "text/plain")], body: Array(repeating: 98, count: 8 << 10))
            #expect(accepted.status == 204)
        }
    }

    @Test(arguments: FrontServer.allCases)
    func aStalledUploadIsCutAndReturnsItsBudget(front: FrontServer) async throws {
        try await withFront(front, limits: Self.shortRequest) { server in
            let stalled = try await RawConnection.connect(port: server.port)
            try await stalled.send(
                "POST /v1/stream/x HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nabc")
            #expect(try await stalled.closedByServer())
            #expect(stalled.text.hasPrefix("HTTP/1.1 408"))
            try await waitUntil { server.requestBodyBytesInFlight == 0 }
        }
    }

    /// A client pipelines many large reads and never reads an answer: the server holds at most
    /// about one answer beyond what the kernel buffers, instead of every answer.
    @Test(arguments: FrontServer.allCases)
    func aPipeliningClientThatDoesNotReadCostsAtMostAboutOneAnswer(front: FrontServer) async throws {
        let answer = 1 << 20
        try await withFront(front, limits: ConnectionLimits(), configureOrigin: { $0.maxChunkBytes = answer }) { server in
            let path = "/v1/stream/pile-\(UInt64.random(in: 0...UInt64.max))"
            var generator = SystemRandomNumberGenerator()
            let data = (0..<(answer)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let created = try await TestHTTP.request(
                port: server.port, .PUT, path, headers: [("Content-Type", "application/octet-stream")], body: data)
            #expect(created.status == 201)
            let requests = 64
            let client = try await RawConnection.connect(port: server.port, reading: false)
            let one = "GET \(path)?offset=-1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
            try await client.send(String(repeating: one, count: requests))
            // Wait until the server is held up by the client, then look at what it holds.
            let largest = try await server.largestQueuedResponseBytes()
            // Without the bound this grows to the sum of the answers the kernel could not take
            // (tens of MiB); with it, one answer plus NIO's write buffer water mark.
            #expect(largest <= 2 * answer + (64 << 10), "queued \(largest) bytes")
            await client.close()
            try await waitUntil { await server.queuedResponseBytes() == 0 }
        }
    }

    /// An SSE reader that stops reading costs the origin about one chunk: the session reads
    /// the next chunk only once the client has taken the last, and when the reader reads again
    /// the session resumes and delivers the rest of the stream.
    @Test
    func anSSEReaderThatStopsReadingCostsAboutOneChunkThenResumes() async throws {
        let chunk = 1 << 20
        let chunks = 16
        try await withFront(.origin, limits: ConnectionLimits(), configureOrigin: { $0.maxChunkBytes = chunk }) { server in
            let path = "/v1/stream/sse-pile-\(UInt64.random(in: 0...UInt64.max))"
            let piece = Array(repeating: UInt8(ascii: "z"), count: chunk)
            for index in 0..<chunks {
                var headers = [("Content-Type", "text/plain")]
                if index == chunks - 1 { headers.append(("Stream-Closed", "true")) }
                let answer = try await TestHTTP.request(port: server.port, index == 0 ? .PUT : .POST, path, headers: headers, body: piece)
                #expect(answer.status == (index == 0 ? 201 : 204))
            }
            let client = try await RawConnection.connect(port: server.port, reading: false)
            try await client.send("GET \(path)?offset=-1&live=sse HTTP/1.1\r\nHost: x\r\n\r\n")
            let largest = try await server.largestQueuedResponseBytes()
            // Without the bound the session would read the whole 16 MiB into memory.
            #expect(largest <= 2 * chunk + (64 << 10), "queued \(largest) bytes")
            // Reading again drains the backlog; the session resumes and ends at the closed end.
            try await client.channel.setOption(.autoRead, value: true).get()
            client.channel.read()
            #expect(try await client.closedByServer())
            #expect(client.text.utf8.lazy.filter { $0 == UInt8(ascii: "z") }.count == chunk * chunks)
            #expect(client.text.contains("\"streamClosed\":true"))
        }
    }

    @Test(arguments: FrontServer.allCases)
    func aMalformedRequestGetsOne400AndTheSocketCloses(front: FrontServer) async throws {
        try await withFront(front, limits: ConnectionLimits()) { server in
            let client = try await RawConnection.connect(port: server.port)
            try await client.send("GET /v1/stream/x\r\n\r\n")
            #expect(try await client.closedByServer())
            #expect(client.text.hasPrefix("HTTP/1.1 400"))
            #expect(client.text.components(separatedBy: "HTTP/1.1 400").count == 2)
        }
    }

    @Test(arguments: FrontServer.allCases, [
        "GET /v1/stream/x?offset=-1 HTTP/1.1\r\n\r\n",
        "GET /v1/stream/x?offset=-1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ])
    func hostMustAppearExactlyOnce(front: FrontServer, request: String) async throws {
        try await withFront(front, limits: ConnectionLimits()) { server in
            let client = try await RawConnection.connect(port: server.port)
            try await client.send(request)
            #expect(try await client.closedByServer())
            #expect(client.text.hasPrefix("HTTP/1.1 400"))
            #expect(client.text.contains("Host"))
        }
    }
}
