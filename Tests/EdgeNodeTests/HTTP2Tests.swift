import EdgeNode
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import OriginServer
import ServerSupport
import TestSupport
import Testing

/// HTTP/2 (swift-nio-http2, chosen by ALPN over TLS): the same protocol behaviour as HTTP/1.1
/// (catch-up, caching, 304, HEAD, long-poll with collapsing, SSE), many live reads on one
/// connection, and a clean wind-down on shutdown.
@Suite struct HTTP2Tests {
    private static func h2(_ ca: TestCertificateAuthority, port: Int) async throws -> TestHTTP2Connection {
        try await TestHTTP2Connection.connect(port: port, tls: try ca.clientContext(protocols: ["h2"]))
    }

    /// Runs `body` with an HTTP/2 connection, closed (and its close awaited) afterwards.
    private static func withH2<T>(_ ca: TestCertificateAuthority, port: Int, _ body: (TestHTTP2Connection) async throws -> T) async throws -> T {
        let connection = try await h2(ca, port: port)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    @Test func catchUpCachingAndHeadBehaveAsOverHTTP11() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }) { edges in
            try await Self.withH2(ca, port: edges.port) { connection in
            #expect(try await connection.negotiatedProtocol() == "h2")

            let created = try await connection.request(.PUT, "/v1/stream/h2", headers: [("Content-Type", "text/plain")])
            #expect(created.status == 201)
            #expect(created.header("Connection") == nil)
            let appended = try await connection.request(.POST, "/v1/stream/h2", headers: [("Content-Type", "text/plain")], body: Array("over h2".utf8))
            #expect(appended.status == 204)
            let next = try #require(appended.header("Stream-Next-Offset"))

            let first = try await connection.request(.GET, "/v1/stream/h2?offset=-1")
            #expect(first.status == 200)
            #expect(first.text == "over h2")
            #expect(first.header("Stream-Next-Offset") == next)
            #expect(first.header("Transfer-Encoding") == nil)
            let etag = try #require(first.header("ETag"))
            let second = try await connection.request(.GET, "/v1/stream/h2?offset=-1")
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.text == "over h2")

            let revalidated = try await connection.request(.GET, "/v1/stream/h2?offset=-1", headers: [("If-None-Match", etag)])
            #expect(revalidated.status == 304)
            #expect(revalidated.body.isEmpty)

            let head = try await connection.request(.HEAD, "/v1/stream/h2")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Stream-Next-Offset") == next)

            let missing = try await connection.request(.GET, "/v1/stream/absent?offset=-1")
            #expect(missing.status == 404)
            }
        }
    }

    @Test func longPollsOnOneConnectionCollapseAndWakeOnAppend() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }) { edges in
            let created = try await edges.originRequest(.PUT, "/v1/stream/lp", headers: [("Content-Type", "text/plain")], body: "a")
            let tail = try #require(created.header("Stream-Next-Offset"))
            try await Self.withH2(ca, port: edges.port) { connection in
            let path = "/v1/stream/lp?offset=\(tail)&live=long-poll&cursor=7"
            let one = try await connection.send(.GET, path).response
            let two = try await connection.send(.GET, path).response
            try await eventually { edges.edge.collapsedWaiters == 2 }
            #expect(try await edges.originRequest(.POST, "/v1/stream/lp", headers: [("Content-Type", "text/plain")], body: "b").status == 204)
            for response in [try await one.get(), try await two.get()] {
                #expect(response.status == 200)
                #expect(response.text == "b")
            }
            #expect(edges.originRequests("long_poll") == 1)
            }
        }
    }

    /// A browser holds at most six HTTP/1.1 connections per host; over HTTP/2 one connection
    /// carries every SSE read of the page.
    @Test func manySSEReadsShareOneConnection() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }) { edges in
            #expect(try await edges.originRequest(.PUT, "/v1/stream/fan", headers: [("Content-Type", "text/plain")], body: "first").status == 201)
            try await Self.withH2(ca, port: edges.port) { connection in
            var readers: [TestHTTP2Connection.EventStream] = []
            for _ in 0..<12 {
                readers.append(try await connection.openSSE("/v1/stream/fan?offset=-1&live=sse"))
            }
            for reader in readers {
                let events = await reader.next(2)
                #expect(events.map(\.event) == ["data", "control"])
                #expect(events.first?.data == "first")
            }
            #expect(try await edges.originRequest(.POST, "/v1/stream/fan", headers: [("Content-Type", "text/plain")], body: "second").status == 204)
            for reader in readers {
                let events = await reader.next(2)
                #expect(events.first?.data == "second")
            }
            #expect(edges.edge.openConnections == 1)
            }
        }
    }

    @Test func originSpeaksHTTP2Directly() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(origin: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile)
        }) { edges in
            try await Self.withH2(ca, port: edges.origin.port!) { connection in
            #expect(try await connection.negotiatedProtocol() == "h2")
            #expect(try await connection.request(.PUT, "/v1/stream/o", headers: [("Content-Type", "application/json")]).status == 201)
            #expect(try await connection.request(.POST, "/v1/stream/o", headers: [("Content-Type", "application/json")], body: Array("{\"n\":1}".utf8)).status == 204)
            let read = try await connection.request(.GET, "/v1/stream/o?offset=-1", headers: [("Accept-Encoding", "gzip")])
            #expect(read.status == 200)
            let sse = try await connection.openSSE("/v1/stream/o?offset=-1&live=sse")
            let events = await sse.next(2)
            #expect(events.first?.event == "data")
            #expect(events.first?.data.contains("\"n\":1") == true)
            }
        }
    }

    /// Shutdown over HTTP/2: a parked long-poll is answered 204 and an SSE response ends, each
    /// on its stream, before the connection goes (GOAWAY).
    @Test func shutdownEndsLiveReadsCleanly() async throws {
        let ca = try TestCertificateAuthority.shared
        var configuration = OriginConfiguration()
        configuration.port = 0
        configuration.longPollTimeout = .seconds(60)
        configuration.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
        let origin = OriginServer(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        try await origin.start()
        let connection = try await Self.h2(ca, port: origin.port!)
        let created = try await connection.request(.PUT, "/v1/stream/d", headers: [("Content-Type", "text/plain")], body: Array("x".utf8))
        let tail = try #require(created.header("Stream-Next-Offset"))
        let sse = try await connection.openSSE("/v1/stream/d?offset=-1&live=sse")
        #expect(await sse.next(2).count == 2)
        let poll = try await connection.send(.GET, "/v1/stream/d?offset=\(tail)&live=long-poll").response
        try await eventually { origin.metrics.registry.emitToString().contains("ds_origin_open_long_polls 1") }

        try await origin.shutdown(gracePeriod: .seconds(10))
        #expect(try await poll.get().status == 204)
        #expect(try await sse.response.get().status == 200)
        await connection.close()
    }

    /// An HTTP/2 connection without streams is closed after the idle timeout, as an idle
    /// HTTP/1.1 connection is.
    @Test func anIdleConnectionIsClosed() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: {
            $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
            $0.limits.idleTimeout = .milliseconds(300)
        }) { edges in
            let connection = try await Self.h2(ca, port: edges.port)
            // Bounded: a server that never closed it would otherwise hang the run.
            // (Recorded here, not in the timer, so that the issue names this test.)
            let channel = connection.channel
            let expired = NIOLockedValueBox(false)
            let bound = channel.eventLoop.scheduleTask(in: .seconds(60)) {
                expired.withLockedValue { $0 = true }
                channel.close(promise: nil)
            }
            try await channel.closeFuture.get()
            bound.cancel()
            #expect(!expired.withLockedValue { $0 }, "the idle HTTP/2 connection was not closed within 60 s")
        }
    }

    /// A client slow to acknowledge the server's SETTINGS: its SETTINGS ACK arrives after the
    /// idle timeout's GOAWAY, when NIO's HTTP/2 handler already counts the connection (no streams)
    /// as closed and fails it. The connection is closed all the same: before, it stayed open for
    /// good (the server waited for a PING answer NIO no longer passed on), and
    /// `anIdleConnectionIsClosed` hung whenever a loaded machine delayed the client that much.
    @Test func anIdleConnectionWhoseClientAcknowledgesSettingsLateIsClosed() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: {
            $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
            $0.limits.idleTimeout = .milliseconds(300)
        }) { edges in
            let client = try await RawH2Client.connect(port: edges.port, tls: try ca.clientContext(protocols: ["h2"]))
            try await client.send(RawH2Client.preface + RawH2Client.frame(type: 0x4, flags: 0))  // SETTINGS, no ack yet
            try await eventually { client.receivedFrames.contains { $0.type == 0x7 } }  // the idle GOAWAY
            let ping = try #require(client.receivedFrames.first { $0.type == 0x6 })
            // Then what a client that has just caught up sends: its SETTINGS ACK, and the PING's answer.
            try await client.send(RawH2Client.frame(type: 0x4, flags: 0x1) + RawH2Client.frame(type: 0x6, flags: 0x1, payload: ping.payload))
            #expect(try await client.closedByServer(within: .seconds(30)))
        }
    }

    /// A client that never answers the PING of the idle GOAWAY: closed `sendTimeout` after it.
    @Test func anIdleConnectionWhoseClientNeverAnswersThePingIsClosed() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: {
            $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
            $0.limits.idleTimeout = .seconds(1)
            $0.limits.sendTimeout = .seconds(2)
        }) { edges in
            let client = try await RawH2Client.connect(port: edges.port, tls: try ca.clientContext(protocols: ["h2"]))
            // A loaded machine can hold this client back past the idle timeout and `sendTimeout`
            // (it failed so in CI runs with 300 ms and 1 s): the server has then closed the
            // connection already, and what the client sends cannot be sent. Closed is what this
            // test asks for, whichever way it came.
            try? await client.send(RawH2Client.preface + RawH2Client.frame(type: 0x4, flags: 0))
            try await eventually { client.receivedFrames.contains { $0.type == 0x4 } }  // the server's SETTINGS
            try? await client.send(RawH2Client.frame(type: 0x4, flags: 0x1))
            try await eventually { client.receivedFrames.contains { $0.type == 0x6 } }  // its PING, never answered
            #expect(try await client.closedByServer(within: .seconds(30)))
        }
    }

    /// A request refused before its body is in (too large) gets its answer and then
    /// RST_STREAM(NO_ERROR), so the client stops sending (RFC 9113 §8.1): its stream closes
    /// while the client has not finished the request, and the connection goes on serving.
    @Test func aRefusalBeforeTheBodyResetsTheStreamOnly() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }) { edges in
            try await Self.withH2(ca, port: edges.port) { connection in
                #expect(try await connection.request(.PUT, "/v1/stream/big", headers: [("Content-Type", "text/plain")]).status == 201)
                let (stream, response) = try await connection.send(
                    .POST, "/v1/stream/big", headers: [("Content-Type", "text/plain"), ("Content-Length", String(1 << 40))], ends: false)
                #expect(try await response.get().status == 413)
                // Closed by the server's reset: the client never ended its side. (Bounded: without
                // the reset it would stay open until the connection closes.)
                try await eventually { !stream.isActive }
                #expect(!stream.isActive)
                #expect(try await connection.request(.GET, "/v1/stream/big?offset=-1").status == 200)
            }
        }
    }
}

/// An HTTP/2 client over TLS that writes exactly the frames a test gives it (none on its own: no
/// SETTINGS ACK, no PING ACK) and parses the frames it receives.
private final class RawH2Client: Sendable {
    let channel: any Channel
    private let received: NIOLockedValueBox<[UInt8]>

    private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// A frame on the connection's stream (0).
    static func frame(type: UInt8, flags: UInt8, payload: [UInt8] = []) -> [UInt8] {
        [UInt8(payload.count >> 16 & 0xff), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags, 0, 0, 0, 0] + payload
    }

    static func connect(port: Int, tls: NIOSSLContext) async throws -> RawH2Client {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(RawCollector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawH2Client(channel: channel, received: received)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// The whole frames received so far, in order.
    var receivedFrames: [(type: UInt8, payload: [UInt8])] {
        let bytes = received.withLockedValue { $0 }
        var frames: [(type: UInt8, payload: [UInt8])] = []
        var index = 0
        while index + 9 <= bytes.count {
            let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            guard index + 9 + length <= bytes.count else { break }
            frames.append((bytes[index + 3], Array(bytes[(index + 9)..<(index + 9 + length)])))
            index += 9 + length
        }
        return frames
    }

    /// Waits until the server closes the connection; `false` if `bound` passed first.
    func closedByServer(within bound: TimeAmount) async throws -> Bool {
        let timedOut = NIOLockedValueBox(false)
        let channel = self.channel
        let guardTask = channel.eventLoop.scheduleTask(in: bound) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        try? await channel.closeFuture.get()
        guardTask.cancel()
        return !timedOut.withLockedValue { $0 }
    }
}
