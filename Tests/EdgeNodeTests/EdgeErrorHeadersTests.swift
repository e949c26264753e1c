import EdgeNode
import NIOHTTP1
import TestSupport
import Testing

/// The answers the edge makes itself carry the browser headers the origin puts on every response
/// (§12.7), so a page behind an edge can read an edge's 502 as it reads an origin's 404.
@Suite("Edge: its own errors carry the browser headers")
struct EdgeErrorHeadersTests {
    private func expectBrowserHeaders(_ response: TestResponse, _ what: String) {
        #expect(response.header("Access-Control-Allow-Origin") == "*", "\(what)")
        #expect(response.header("X-Content-Type-Options") == "nosniff", "\(what)")
        #expect(response.header("Cross-Origin-Resource-Policy") == "cross-origin", "\(what)")
        #expect(response.header("Access-Control-Expose-Headers")?.contains("Stream-Next-Offset") == true, "\(what)")
    }

    @Test func upstreamFailuresAndRejectionsAreReadableByBrowsers() async throws {
        try await withFakeUpstream(edge: { $0.maxBodyBytes = 16 }) { _ in
            .read("x", next: 1, upToDate: true, cacheControl: "no-store")
        } _: { t in
            let twoCredentials = try await t.request(.GET, "/v1/stream/s", headers: [("Authorization", "a"), ("Authorization", "b")])
            #expect(twoCredentials.status == 400)
            expectBrowserHeaders(twoCredentials, "400")
            let tooLarge = try await t.request(.POST, "/v1/stream/s", headers: [("Content-Type", "text/plain")],
                                               body: String(repeating: "x", count: 100))
            #expect(tooLarge.status == 413)
            expectBrowserHeaders(tooLarge, "413")
            await t.fake.stop()
            let down = try await t.request(.GET, "/v1/stream/s")
            #expect(down.status == 502 || down.status == 504)
            expectBrowserHeaders(down, "\(down.status)")
        }
    }
}
