import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OriginServer
import TestSupport
import Testing

/// Origin only: these look at the origin's own API, metrics page and shutdown.
@Suite("Embedding, hooks, metrics and shutdown", .disabled(if: Topology.throughEdge, "origin API tests"))
struct EmbeddingTests {
    @Test func hooksFireOnCreateAndDeleteOnly() async throws {
        let events = NIOLockedValueBox<[String]>([])
        try await withOrigin(configure: { configuration in
            configuration.onStreamCreated = { path in events.withLockedValue { $0.append("created \(path)") } }
            configuration.onStreamDeleted = { path in events.withLockedValue { $0.append("deleted \(path)") } }
        }) { origin in
            let path = Origin.uniquePath("hook")
            let name = String(path.dropFirst("/v1/stream/".count))
            try await origin.create(path)
            #expect(try await origin.request(.PUT, path, headers: [("Content-Type", "text/plain")]).status == 200)
            #expect(try await origin.request(.DELETE, path).status == 204)
            #expect(events.withLockedValue { $0 } == ["created \(name)", "deleted \(name)"])
        }
    }

    @Test func metricsCountRequestsAndBytes() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            try await origin.append(path, "12345")
            _ = try await origin.request(.GET, path)
            let metrics = try await origin.request(.GET, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains(#"ds_origin_requests_total{operation="append",status="204"} 1"#))
            #expect(metrics.text.contains(#"ds_origin_requests_total{operation="read",status="200"} 1"#))
            #expect(metrics.text.contains("ds_origin_appends_total 1"))
            #expect(metrics.text.contains("ds_origin_streams 1"))
        }
    }

    @Test func shutdownEndsLongPollsAndSSE() async throws {
        var configuration = OriginConfiguration()
        configuration.port = 0
        configuration.longPollTimeout = .seconds(60)
        configuration.sseReconnectInterval = .seconds(60)
        let server = OriginServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        try await server.start()
        let port = server.port!
        _ = try await TestHTTP.request(port: port, .PUT, "/v1/stream/s", headers: [("Content-Type", "text/plain")])
        let pollConnection = try await TestConnection.connect(port: port)
        let poll = pollConnection.send(.GET, "/v1/stream/s?offset=now&live=long-poll")
        let sse = try await SSEReader.open(port: port, "/v1/stream/s?offset=-1&live=sse")
        _ = await sse.next()
        try await waitUntil { server.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }
        try await server.shutdown()
        #expect(try await poll.get().status == 204)
        #expect(await sse.remaining().isEmpty)
        await pollConnection.close()
    }

    @Test func portZeroReportsTheChosenPort() async throws {
        try await withOrigin { (origin: Origin) async throws in
            #expect(origin.port > 0)
            #expect(origin.server.baseURL == "http://127.0.0.1:\(origin.port)")
        }
    }
}
