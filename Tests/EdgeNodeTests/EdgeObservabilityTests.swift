import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// `/__edge/stats` (JSON), `/metrics` (Prometheus text) and the `/__edge/` dashboard.
@Suite("Edge: observability")
struct EdgeObservabilityTests {
    /// One write, one miss, three hits: the JSON has the counts and the ratios they imply.
    @Test func statsJSONReportsRequestsRatiosAndCache() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/a", headers: [("Content-Type", "text/plain")], body: "hello")
            #expect(try await edges.request(.GET, "/v1/stream/a").header("X-Cache") == "MISS")
            for _ in 0..<3 { #expect(try await edges.request(.GET, "/v1/stream/a").header("X-Cache") == "HIT") }

            let response = try await edges.request(.GET, "/__edge/stats")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(response.header("Cache-Control") == "no-store")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
            let requests = try #require(json["requests"] as? [String: [String: Int]])
            #expect(requests["catch_up"]?["MISS"] == 1)
            #expect(requests["catch_up"]?["HIT"] == 3)
            #expect(requests["write"]?["PASS"] == 1)
            let hitRate = try #require(json["hitRate"] as? Double)
            #expect(abs(hitRate - 0.75) < 1e-9)  // 3 hits of 4 cacheable reads
            let collapseRatio = try #require(json["collapseRatio"] as? Double)
            #expect(abs(collapseRatio - 2.5) < 1e-9)  // 5 client requests, 2 upstream
            let cache = try #require(json["cache"] as? [String: Int])
            #expect(cache["entries"] == 1)
            #expect(cache["evictions"] == 0)
            #expect((cache["bytes"] ?? 0) > 5)
            #expect(cache["bytes"] == edges.edge.cacheStats.bytes)
            #expect(json["bytesFromCache"] as? Int == 15)
            #expect(json["upstreamRequestsTotal"] as? Int == 2)
            #expect(json["openConnections"] as? Int ?? 0 >= 1)  // the one asking
        }
    }

    @Test func metricsExposeRequestsUpstreamCacheAndLatency() async throws {
        try await withEdges(edge: { $0.cacheBudgetBytes = 2_500 }) { edges in
            for name in ["a", "b", "c"] {
                _ = try await edges.request(.PUT, "/v1/stream/\(name)", headers: [("Content-Type", "text/plain")], body: String(repeating: name, count: 1_000))
                _ = try await edges.request(.GET, "/v1/stream/\(name)")
            }
            _ = try await edges.request(.GET, "/v1/stream/c")
            _ = try await edges.request(.HEAD, "/v1/stream/c")

            let response = try await edges.request(.GET, "/metrics")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
            let text = response.text
            func value(_ series: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
            }
            #expect(value(#"ds_edge_requests_total{class="catch_up",cache="MISS"}"#) == 3)
            #expect(value(#"ds_edge_requests_total{class="catch_up",cache="HIT"}"#) == 1)
            #expect(value(#"ds_edge_requests_total{class="write",cache="PASS"}"#) == 3)
            #expect(value(#"ds_edge_requests_total{class="head",cache="PASS"}"#) == 1)
            #expect(value(#"ds_edge_upstream_requests_total{class="catch_up"}"#) == 3)
            #expect(value(#"ds_edge_upstream_requests_total{class="write"}"#) == 3)
            let stats = edges.edge.cacheStats
            #expect(stats.evictions >= 1)
            #expect(value("ds_edge_cache_bytes") == Double(stats.bytes))
            #expect(value("ds_edge_cache_entries") == Double(stats.entries))
            #expect(value("ds_edge_cache_evictions_total") == Double(stats.evictions))
            #expect(text.contains(#"ds_edge_upstream_latency_seconds_bucket{le=""#))
            #expect(value(#"ds_edge_upstream_latency_seconds_bucket{le="+Inf"}"#) == 7)  // 3 writes, 3 reads, 1 HEAD
            #expect(value("ds_edge_upstream_latency_seconds_count") == 7)
            // The stats requests are the edge's own: they never reach the origin.
            #expect(edges.originRequests("read") == 3)
        }
    }

    /// The dashboard is one page with everything inline, polling the configured stats path.
    @Test(arguments: ["/__edge/stats", "/ops/edge-stats.json"])
    func dashboardIsSelfContainedAndPollsTheStatsPath(statsPath: String) async throws {
        try await withEdges(edge: { $0.statsPath = statsPath }) { edges in
            let page = try await edges.request(.GET, "/__edge/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            let html = page.text.lowercased()
            #expect(html.hasPrefix("<!doctype html>"))
            #expect(html.contains("<script"))
            #expect(!html.contains("<script src"))
            #expect(html.range(of: #"<script[^>]*\ssrc\s*="#, options: .regularExpression) == nil)
            // One link only: an empty icon, so browsers do not ask for /favicon.ico.
            #expect(html.components(separatedBy: "<link").count == 2 && html.contains(#"<link rel="icon" href="data:,">"#))
            #expect(!html.contains("@import"))
            #expect(!html.contains("http://"))
            #expect(!html.contains("https://"))
            #expect(!html.contains("//cdn"))
            #expect(page.text.contains("'\(statsPath)'") || page.text.contains("\"\(statsPath)\""))
            // …and that path answers with the JSON the page reads.
            let stats = try await edges.request(.GET, statsPath)
            #expect(stats.status == 200)
            let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
            for key in ["hitRate", "collapseRatio", "upstreamRequestsTotal", "clientRequestsTotal", "bytesFromCache", "openConnections", "cache"] {
                #expect(json?[key] != nil, "stats lacks \(key)")
            }
        }
    }
}
