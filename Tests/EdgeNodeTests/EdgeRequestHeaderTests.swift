import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// Request headers the edge must not take from clients at face value.
@Suite("Edge: request headers")
struct EdgeRequestHeaderTests {
    static let text = [("Content-Type", "text/plain")]

    /// The origin builds `Location` from `X-Forwarded-Host`; a client must not be able to point
    /// it elsewhere through the edge.
    @Test func clientForwardedHostDoesNotReachTheOrigin() async throws {
        try await withEdges { edges in
            let create = try await edges.request(
                .PUT, "/v1/stream/w", headers: Self.text + [("X-Forwarded-Host", "attacker.example")], body: "x")
            #expect(create.status == 201)
            #expect(create.header("Location") == "http://127.0.0.1:\(edges.port)/v1/stream/w")
        }
    }

    /// An inner tier told to trust its clients keeps the value they set.
    @Test func trustedForwardedHostIsKept() async throws {
        try await withEdges(edge: { $0.trustForwardedHost = true }) { edges in
            let create = try await edges.request(
                .PUT, "/v1/stream/w", headers: Self.text + [("X-Forwarded-Host", "edge.example:8080")], body: "x")
            #expect(create.status == 201)
            #expect(create.header("Location") == "http://edge.example:8080/v1/stream/w")
            // Without one it is still set from Host.
            let other = try await edges.request(.PUT, "/v1/stream/v", headers: Self.text, body: "x")
            #expect(other.header("Location") == "http://127.0.0.1:\(edges.port)/v1/stream/v")
        }
    }

    /// Through two tiers (the inner one trusting the outer), `Location` names the edge the
    /// client used, and a client's own value is still dropped by the outer one.
    @Test func tiersKeepTheOuterEdgesHost() async throws {
        try await withEdges(tiers: 2) { edges in
            let create = try await edges.request(
                .PUT, "/v1/stream/w", headers: Self.text + [("X-Forwarded-Host", "attacker.example")], body: "x")
            #expect(create.status == 201)
            #expect(create.header("Location") == "http://127.0.0.1:\(edges.port)/v1/stream/w")
        }
    }

    /// Only the first `Authorization` would be in the cache key while all of them went upstream.
    @Test func severalAuthorizationHeadersAreRefused() async throws {
        try await withEdges { edges in
            _ = try await edges.originRequest(.PUT, "/v1/stream/a", headers: Self.text, body: "secret")
            let readsBefore = edges.originRequests("read")
            let response = try await edges.request(
                .GET, "/v1/stream/a", headers: [("Authorization", "Bearer alice"), ("Authorization", "Bearer bob")])
            #expect(response.status == 400)
            #expect(response.text.contains("Authorization"))
            #expect(response.text != "secret")
            #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(response.header("Cache-Control") == "no-store")
            #expect(response.header("X-Cache") == "PASS")
            #expect(response.header("X-Content-Type-Options") == "nosniff")
            #expect(edges.originRequests("read") == readsBefore)
            #expect(edges.edge.cacheStats.entries == 0)
            // One is fine.
            let single = try await edges.request(.GET, "/v1/stream/a", headers: [("Authorization", "Bearer alice")])
            #expect(single.status == 200 && single.text == "secret")
        }
    }
}
