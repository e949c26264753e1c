import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Foundation
import OriginServer
import StreamStore
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

    /// Write, stop, start on the same data dir, read back: over HTTP, with a producer that
    /// carries on where it was, and the storage metrics of a file-backed origin.
    @Test func aFileBackedOriginKeepsStreamsAcrossARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func start() async throws -> OriginServer {
            var configuration = OriginConfiguration()
            configuration.port = 0
            let store = try FileStore.open(FileStoreOptions(directory: directory))
            let server = OriginServer(configuration: configuration, store: store, group: MultiThreadedEventLoopGroup.singleton)
            try await server.start()
            return server
        }
        func producer(_ seq: Int) -> [(String, String)] {
            [("Content-Type", "text/plain"), ("Producer-Id", "writer"), ("Producer-Epoch", "1"), ("Producer-Seq", String(seq))]
        }
        var server = try await start()
        var port = server.port!
        #expect(try await TestHTTP.request(port: port, .PUT, "/v1/stream/kept", headers: [("Content-Type", "text/plain")]).status == 201)
        #expect(try await TestHTTP.request(port: port, .POST, "/v1/stream/kept", headers: producer(0), body: Array("one ".utf8)).status == 200)
        #expect(try await TestHTTP.request(port: port, .POST, "/v1/stream/kept", headers: producer(1), body: Array("two ".utf8)).status == 200)
        let before = try await TestHTTP.request(port: port, .GET, "/v1/stream/kept?offset=-1")
        let metrics = try await TestHTTP.request(port: port, .GET, "/metrics").text
        #expect(metrics.contains("ds_origin_store_committed_writes_total 3"))
        #expect(metrics.contains("ds_origin_store_memory_reads_total 1"))
        #expect(metrics.contains("ds_origin_store_failed_commits_total 0"))
        try await server.shutdown()

        server = try await start()
        port = server.port!
        let after = try await TestHTTP.request(port: port, .GET, "/v1/stream/kept?offset=-1")
        #expect(after.text == "one two ")
        #expect(after.header("ETag") == before.header("ETag"))
        // The producer's retry is a duplicate; its next sequence number is accepted.
        #expect(try await TestHTTP.request(port: port, .POST, "/v1/stream/kept", headers: producer(1), body: Array("two ".utf8)).status == 204)
        #expect(try await TestHTTP.request(port: port, .POST, "/v1/stream/kept", headers: producer(2), body: Array("three".utf8)).status == 200)
        #expect(try await TestHTTP.request(port: port, .GET, "/v1/stream/kept?offset=-1").text == "one two three")
        try await server.shutdown()
    }

    /// A large catch-up read from disk goes out with sendfile when it leaves unchanged, and as
    /// compressed bytes when the client accepts gzip (the compressor cannot take file ranges).
    @Test func largeReadsFromAFileBackedOriginWithAndWithoutCompression() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-sendfile-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = FileStoreOptions(directory: directory)
        options.hotTailBytes = 1024
        var configuration = OriginConfiguration()
        configuration.port = 0
        let server = OriginServer(configuration: configuration, store: try FileStore.open(options), group: MultiThreadedEventLoopGroup.singleton)
        try await server.start()
        let port = server.port!
        let data = (0..<(600 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let type = [("Content-Type", "application/octet-stream")]
        #expect(try await TestHTTP.request(port: port, .PUT, "/v1/stream/big", headers: type, body: data).status == 201)
        let plain = try await TestHTTP.request(port: port, .GET, "/v1/stream/big?offset=-1")
        #expect(plain.status == 200)
        #expect(plain.body == data)
        let identity = try await TestHTTP.request(port: port, .GET, "/v1/stream/big?offset=-1", headers: [("Accept-Encoding", "identity")])
        #expect(identity.body == data)
        let gzip = try await TestHTTP.request(port: port, .GET, "/v1/stream/big?offset=-1", headers: [("Accept-Encoding", "gzip")])
        #expect(gzip.status == 200)
        #expect(gzip.header("Content-Encoding") == "gzip")
        #expect(gzip.body.count < data.count)
        let head = try await TestHTTP.request(port: port, .HEAD, "/v1/stream/big")
        #expect(head.status == 200)
        // Many in a row on one connection: every descriptor handed out is closed again.
        let connection = try await TestConnection.connect(port: port)
        for _ in 0..<20 {
            let response = try await connection.send(.GET, "/v1/stream/big?offset=-1").get()
            #expect(response.body.count == data.count)
        }
        await connection.close()
        try await server.shutdown()
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
