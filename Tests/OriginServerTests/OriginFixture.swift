import EdgeNode
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import StreamStore
import TestSupport
import Testing

/// A clock tests move by hand, for expiry without waiting.
final class ManualClock: Sendable {
    private let now = NIOLockedValueBox<Double>(1_800_000_000)
    var read: @Sendable () -> Double { { [now] in now.withLockedValue { $0 } } }
    func advance(_ seconds: Double) { now.withLockedValue { $0 += seconds } }
}

/// Where the protocol suite sends its requests. `make test` runs the suite three times:
/// straight to the origin, with `DS_TEST_THROUGH_EDGE=1` through an edge in front of it, which
/// must be just as conforming, and with `DS_TEST_STORE=file` against an origin on the durable
/// file store.
enum Topology {
    static let throughEdge = ProcessInfo.processInfo.environment["DS_TEST_THROUGH_EDGE"] == "1"
    static let fileStore = ProcessInfo.processInfo.environment["DS_TEST_STORE"] == "file"

    /// The store the suite runs on, with the test's clock, and the directory to remove after.
    static func makeStore(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws
        -> (any StreamStore, directory: String?)
    {
        guard fileStore else { return (MemoryStore(clock: clock), nil) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-origin-\(UUID().uuidString)").path
        return (try FileStore.open(FileStoreOptions(directory: directory), clock: clock), directory)
    }
}

/// A running origin on an ephemeral port (behind an edge when `Topology.throughEdge`), and
/// shortcuts for talking to it.
struct Origin {
    let server: OriginServer
    let edge: EdgeServer?
    /// The port the test talks to: the edge's when there is one.
    var port: Int { edge?.port ?? server.port! }

    /// A unique stream URL path for one test.
    static func uniquePath(_ name: String = "s") -> String {
        "/v1/stream/\(name)-\(UInt64.random(in: 0...UInt64.max))"
    }

    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> TestResponse {
        try await TestHTTP.request(port: port, method, path, headers: headers, body: body)
    }

    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], text: String) async throws -> TestResponse {
        try await request(method, path, headers: headers, body: Array(text.utf8))
    }

    /// Creates a stream and checks it was created.
    @discardableResult
    func create(_ path: String, type: String = "text/plain", body: String? = nil, headers: [(String, String)] = []) async throws -> TestResponse {
        let response = try await request(.PUT, path, headers: [("Content-Type", type)] + headers, body: body.map { Array($0.utf8) })
        #expect(response.status == 201, "create \(path): \(response.status) \(response.text)")
        return response
    }

    /// Appends and checks it succeeded; returns the new tail offset.
    @discardableResult
    func append(_ path: String, _ text: String, type: String = "text/plain", headers: [(String, String)] = []) async throws -> String {
        let response = try await request(.POST, path, headers: [("Content-Type", type)] + headers, text: text)
        #expect(response.status == 204 || response.status == 200, "append: \(response.status) \(response.text)")
        return try #require(response.header("Stream-Next-Offset"))
    }

    /// Sends a long-poll on a connection of its own and returns once the origin has parked it
    /// (its open-long-polls gauge shows it), so what the test does next happens while it waits.
    func parkedLongPoll(_ path: String, offset: String) async throws -> (TestConnection, EventLoopFuture<TestResponse>) {
        let connection = try await TestConnection.connect(port: port)
        let poll = connection.send(.GET, "\(path)?offset=\(offset)&live=long-poll")
        try await waitUntil { server.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
        return (connection, poll)
    }

    /// Reads everything from `offset` by following `Stream-Next-Offset` until up to date.
    func readAll(_ path: String, from offset: String = "-1") async throws -> [UInt8] {
        var bytes: [UInt8] = []
        var next = offset
        for _ in 0..<10_000 {
            let response = try await request(.GET, "\(path)?offset=\(next)")
            #expect(response.status == 200)
            bytes += response.body
            next = try #require(response.header("Stream-Next-Offset"))
            if response.header("Stream-Up-To-Date") == "true" { return bytes }
        }
        Issue.record("stream never reached up-to-date")
        return bytes
    }
}

/// Starts an origin for the duration of `body`. Tests use a short long-poll timeout so that
/// timeouts are exercised without slowing the suite.
func withOrigin<T>(
    clock: (@Sendable () -> Double)? = nil,
    configure: (inout OriginConfiguration) -> Void = { _ in },
    _ body: (Origin) async throws -> T
) async throws -> T {
    let (store, directory) = try clock.map { try Topology.makeStore(clock: $0) } ?? Topology.makeStore()
    defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
    var configuration = OriginConfiguration()
    configuration.port = 0
    configuration.longPollTimeout = .milliseconds(300)
    configure(&configuration)
    let server = OriginServer(configuration: configuration, store: store, group: MultiThreadedEventLoopGroup.singleton)
    try await server.start()
    var edge: EdgeServer?
    if Topology.throughEdge {
        var edgeConfiguration = EdgeConfiguration()
        edgeConfiguration.port = 0
        edgeConfiguration.upstreamPort = server.port!
        edgeConfiguration.sseReconnectInterval = configuration.sseReconnectInterval
        edgeConfiguration.upstreamConnectTimeout = .seconds(10)  // a loaded CI machine is slow, not down
        edgeConfiguration.upstreamTimeout = .seconds(60)
        edge = EdgeServer(configuration: edgeConfiguration, group: MultiThreadedEventLoopGroup.singleton)
        try await edge!.start()
    }
    do {
        let result = try await body(Origin(server: server, edge: edge))
        try await edge?.shutdown()
        try await server.shutdown()
        return result
    } catch {
        try? await edge?.shutdown()
        try? await server.shutdown()
        throw error
    }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}
