import EdgeNode
import ServerSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import StreamStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An origin with one or more edges chained in front of it (edge → … → origin), on ephemeral ports.
struct EdgeTopology {
    let origin: OriginServer
    /// `edges[0]` is the one clients talk to; the last one talks to the origin.
    let edges: [EdgeServer]
    var edge: EdgeServer { edges[0] }
    var port: Int { edges[0].port! }

    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        try await TestHTTP.request(port: port, method, path, headers: headers, body: body.map { Array($0.utf8) })
    }

    func originRequest(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        try await TestHTTP.request(port: origin.port!, method, path, headers: headers, body: body.map { Array($0.utf8) })
    }

    /// The origin's count of requests of one operation (from its Prometheus counters).
    func originRequests(_ operation: String) -> Int {
        Self.sum(origin.metrics.registry.emitToString(), metric: "ds_origin_requests_total", label: "operation=\"\(operation)\"")
    }

    static func sum(_ text: String, metric: String, label: String) -> Int {
        text.split(separator: "\n").filter { $0.hasPrefix(metric + "{") && $0.contains(label) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
    }
}

/// Raises the open-file limit to its hard maximum: the large fan-out tests hold thousands of sockets.
func raiseFileLimit() {
    FileDescriptorLimit.raise()
}

func withEdges<T>(
    tiers: Int = 1,
    store: (any StreamStore)? = nil,
    origin configureOrigin: (inout OriginConfiguration) -> Void = { _ in },
    edge configureEdge: (inout EdgeConfiguration) -> Void = { _ in },
    _ body: (EdgeTopology) async throws -> T
) async throws -> T {
    var originConfiguration = OriginConfiguration()
    originConfiguration.port = 0
    // Long enough that a loaded CI machine never turns "append wakes the parked poll" into a
    // 204 timeout; shorter than the edge's upstream timeout below so a poll never becomes a 504.
    // Tests about timeouts set their own.
    originConfiguration.longPollTimeout = .seconds(30)
    configureOrigin(&originConfiguration)
    let origin = OriginServer(configuration: originConfiguration, store: store, group: MultiThreadedEventLoopGroup.singleton)
    try await origin.start()
    var edges: [EdgeServer] = []
    var upstreamPort = origin.port!
    for tier in 0..<tiers {
        var configuration = EdgeConfiguration()
        configuration.port = 0
        configuration.upstreamPort = upstreamPort
        // Built from the origin outwards: every tier but the last (the clients') is fronted by an
        // edge, whose X-Forwarded-Host it keeps, as a tiered deployment would configure it.
        configuration.trustForwardedHost = tier < tiers - 1
        // Generous: a stopped upstream refuses connections at once, so no test waits for these,
        // and a loaded CI machine must not turn a slow answer into a 502 or 504.
        configuration.upstreamConnectTimeout = .seconds(10)
        configuration.upstreamTimeout = .seconds(60)
        configureEdge(&configuration)
        let edge = EdgeServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        try await edge.start()
        edges.insert(edge, at: 0)
        upstreamPort = edge.port!
    }
    let topology = EdgeTopology(origin: origin, edges: edges)
    do {
        let result = try await body(topology)
        for edge in edges { try await edge.shutdown() }
        try await origin.shutdown()
        return result
    } catch {
        for edge in edges { try? await edge.shutdown() }
        try? await origin.shutdown()
        throw error
    }
}

/// Polls `condition` (bounded) until it holds.
func eventually(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<6_000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("condition never became true")
}

/// A port outside the kernel's ephemeral range (32768 and up here), for tests that stop a server
/// and start another on the same port: with port 0, a parallel test's socket could take the
/// freed port in between. Tries random ports until one binds.
func withPortOutsideEphemeralRange<T>(_ bind: (Int) async throws -> T) async throws -> T {
    var lastError: (any Error)?
    for _ in 0..<20 {
        do {
            return try await bind(Int.random(in: 20_000..<32_000))
        } catch {
            lastError = error
        }
    }
    throw lastError!
}
