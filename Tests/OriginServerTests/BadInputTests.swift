import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Bad input keeps the server serving (§12)")
struct BadInputTests {
    @Test func unknownMethodIs405WithAllow() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.PATCH, Origin.uniquePath())
            #expect(response.status == 405)
            #expect(response.header("Allow")?.contains("GET") == true)
        }
    }

    @Test func oversizeBodyIs413() async throws {
        try await withOrigin(configure: { $0.maxBodyBytes = 1000 }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")], body: [UInt8](repeating: 65, count: 1001))
            #expect(response.status == 413)
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")], body: [UInt8](repeating: 65, count: 1000)).status == 204)
        }
    }

    @Test func oversizeChunkedBodyIs413() async throws {
        try await withOrigin(configure: { $0.maxBodyBytes = 10 }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let reply = try await TestHTTPRaw.exchange(
                port: origin.port,
                "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
            #expect(reply.hasPrefix("HTTP/1.1 413"))
            #expect(try await origin.request(.GET, path).body.isEmpty)
        }
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        "\u{0}\u{1}\u{2}\u{3}binary junk\r\n\r\n",
        "GET /v1/stream/x HTTP/1.1\r\nBad Header Line\r\n\r\n",
    ])
    func garbageOnTheSocketGets400AndServerKeepsServing(garbage: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let reply = try await TestHTTPRaw.exchange(port: origin.port, garbage)
            #expect(reply.isEmpty || reply.hasPrefix("HTTP/1.1 400"))
            let path = Origin.uniquePath()
            try await origin.create(path, body: "still here")
            #expect(try await origin.request(.GET, path).text == "still here")
        }
    }

    @Test(arguments: ["/v1/stream/", "/v1/stream/a/../b", "/v1/stream/a//b", "/v1/stream/%zz"])
    func badStreamNamesAre400(path: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            #expect(try await origin.request(.PUT, path).status == 400)
        }
    }

    /// A TTL or expiry beyond what an Int holds once crashed the origin on the first read
    /// (the Cache-Control lifetime was converted without a bound).
    @Test(arguments: [
        ("Stream-TTL", "9999999999999999999"), ("Stream-TTL", "9223372036854775807"),
        ("Stream-Expires-At", "9999-12-31T23:59:59Z"),
    ])
    func hugeLifetimesAreServedNotTrapped(header: String, value: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "kept", headers: [(header, value)])
            for _ in 0..<3 {
                let read = try await origin.request(.GET, path + "?offset=-1")
                #expect(read.status == 200)
                #expect(read.text == "kept")
                #expect(read.header("Cache-Control")?.contains("max-age=60") == true)
            }
            #expect(try await origin.request(.HEAD, path).status == 200)
        }
    }

    @Test func unknownRouteIs404() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.GET, "/nothing/here")
            #expect(response.status == 404)
            #expect(response.text.contains("/v1/stream/"))
        }
    }

    @Test func clientDisconnectDuringLongPollIsHarmless() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let (connection, _) = try await origin.parkedLongPoll(path, offset: "now")
            await connection.close()
            try await waitUntil { origin.server.metrics.registry.emitToString().contains("ds_origin_open_long_polls 0") }
            try await origin.append(path, "after")
            #expect(try await origin.request(.GET, path).text == "after")
        }
    }
}
