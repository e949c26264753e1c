@testable import EdgeNode
import Foundation
import NIOCore
import TestSupport
import Testing

/// The history and top streams behind `/__edge/stats` and the dashboard: counted by
/// `EdgeMetrics` without I/O, then served by a running edge.
@Suite("Edge: stats history and top streams")
struct EdgeStatsHistoryTests {
    private static let cache = ResponseCache.Stats(bytes: 500, entries: 2, evictions: 0, budget: 1_000)
    private static let routeCache = RouteCache.Stats(bytes: 0, entries: 0, evictions: 0, budget: 0)

    private func decode(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// Rows of `history` as dictionaries keyed by column name.
    private func rows(_ json: [String: Any]) throws -> [[String: Double]] {
        let history = try #require(json["history"] as? [String: Any])
        let columns = try #require(history["columns"] as? [String])
        let rows = try #require(history["rows"] as? [[Any]])
        return rows.map { row in
            Dictionary(uniqueKeysWithValues: zip(columns, row).compactMap { name, value in (value as? NSNumber).map { (name, $0.doubleValue) } })
        }
    }

    @Test func eachSecondHoldsItsOwnCountsAndTheGaugesAtItsEnd() throws {
        let metrics = EdgeMetrics()
        metrics.request(.catchUp, .miss, stream: "a", bytes: 100)
        metrics.upstream(.catchUp)
        metrics.upstreamAnswered(seconds: 0.003, bytes: 100)
        metrics.request(.catchUp, .hit, stream: "a", bytes: 100, fromCache: true)
        metrics.request(.write, .pass, stream: "a")
        metrics.sample(at: 1_000, cache: Self.cache, openConnections: 3, sseSubscriptions: 0)
        for _ in 0..<4 { metrics.request(.longPoll, .collapsed, stream: "b", bytes: 10) }
        metrics.upstream(.longPoll)
        metrics.liveReaderStarted("b", .sse)
        metrics.sample(at: 1_001, cache: Self.cache, openConnections: 4, sseSubscriptions: 1)

        let json = try decode(metrics.json(cache: Self.cache, routeCache: Self.routeCache, openConnections: 4, history: .seconds, now: 1_001))
        let seconds = try rows(json)
        #expect(seconds.count == 2)
        let first = seconds[0], second = seconds[1]
        #expect(first["time"] == 1_000 && second["time"] == 1_001 && second["span"] == 1)
        #expect(first["HIT"] == 1 && first["MISS"] == 1 && first["PASS"] == 1)
        #expect(first["served_from_cache"] == 1 && first["cache_candidates"] == 2)
        #expect(first["bytes_from_cache"] == 100 && first["bytes_from_upstream"] == 100 && first["bytes_received"] == 100)
        #expect(first["latency_p50"] == 0.005 && first["open_connections"] == 3)
        #expect(second["COLLAPSED"] == 4 && second["long_poll"] == 4 && second["long_poll_upstream_requests"] == 1)
        #expect(second["served_from_cache"] == 4 && second["HIT"] == 0)
        #expect(second["open_sse"] == 1 && second["sse_subscriptions"] == 1 && second["open_connections"] == 4)
        // No upstream answer in that second: no latency to report.
        #expect(second["latency_p99"] == nil)

        // Asked for what came after the first second, only the second comes back.
        let later = try decode(metrics.json(
            cache: Self.cache, routeCache: Self.routeCache, openConnections: 4, history: .secondsAfter(1_000), now: 1_001))
        #expect(try rows(later).map { $0["time"] } == [1_001])
        // Minutes: both seconds fall in one (the minute in progress).
        let minutes = try rows(decode(metrics.json(cache: Self.cache, routeCache: Self.routeCache, openConnections: 4, history: .minutes, now: 1_001)))
        #expect(minutes.count == 1)
        #expect(minutes[0]["time"] == 960 && minutes[0]["COLLAPSED"] == 4 && minutes[0]["MISS"] == 1 && minutes[0]["open_sse"] == 1)
        // Without a history request, none is sent.
        #expect(try decode(metrics.json(cache: Self.cache, routeCache: Self.routeCache, openConnections: 4, now: 1_001))["history"] == nil)
    }

    /// The totals: served from the cache counts HIT, STALE, REVALIDATED and COLLAPSED over
    /// every outcome but PASS; offloads compare what the upstream did with what clients got.
    @Test func ratiosFollowTheDefinitions() throws {
        let metrics = EdgeMetrics()
        for outcome in [CacheOutcome.hit, .stale, .revalidated, .collapsed, .miss] {
            metrics.request(.catchUp, outcome, stream: "s", bytes: 100, fromCache: outcome != .miss && outcome != .collapsed)
        }
        metrics.request(.write, .pass, stream: "s")
        metrics.request(.route, .hit)  // routes are outside the stream figures
        metrics.upstream(.catchUp)
        metrics.upstream(.write)
        metrics.upstreamReceived(bytes: 100)
        let json = try decode(metrics.json(cache: Self.cache, routeCache: Self.routeCache, openConnections: 0, now: 0))
        #expect(json["hitRate"] as? Double == 0.8)  // 4 of 5
        #expect(json["requestOffload"] as? Double == 4.0 / 6.0)  // 6 stream requests, 2 upstream
        #expect(json["byteOffload"] as? Double == 0.8)  // 500 bytes served, 100 received
        #expect(json["bytesSaved"] as? Int == 400)
    }

    @Test func topStreamsAreTheBusiestWithTheirOwnFigures() throws {
        let metrics = EdgeMetrics()
        for _ in 0..<5 { metrics.request(.catchUp, .hit, stream: "busy", bytes: 10, fromCache: true) }
        metrics.request(.catchUp, .miss, stream: "busy", bytes: 10)
        metrics.request(.catchUp, .miss, stream: "quiet", bytes: 7)
        metrics.liveReaderStarted("busy", .sse)
        metrics.liveReaderStarted("busy", .longPoll)
        metrics.liveReaderStarted("quiet", .longPoll)
        metrics.liveReaderEnded("quiet", .longPoll)
        metrics.sent(bytes: 30, fromCache: false, stream: "busy")
        let json = try decode(metrics.json(cache: Self.cache, routeCache: Self.routeCache, openConnections: 0, now: 0))
        let top = try #require(json["topStreams"] as? [[String: Any]])
        #expect(top.map { $0["stream"] as? String } == ["busy", "quiet"])
        #expect(top[0]["requests"] as? Int == 6)
        #expect(top[0]["servedFromCache"] as? Int == 5)
        #expect(top[0]["bytes"] as? Int == 90)
        #expect(top[0]["liveReaders"] as? Int == 2)
        #expect(top[1]["liveReaders"] as? Int == 0)
        #expect(json["openSSE"] as? Int == 1 && json["openLongPolls"] as? Int == 1)
    }

    /// A running edge samples once a second by itself; the page's first request gets the last
    /// hour at once, and the top streams name the stream read.
    @Test func aRunningEdgeServesItsHistory() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/hist", headers: [("Content-Type", "text/plain")], body: "hello")
            for _ in 0..<3 { _ = try await edges.request(.GET, "/v1/stream/hist") }
            var rows: [[String: Double]] = []
            try await eventually {
                let stats = try await edges.request(.GET, "/__edge/stats?history=hour")
                rows = try self.rows(try self.decode(stats.body))
                return rows.reduce(0) { $0 + ($1["catch_up"] ?? 0) } == 3
            }
            #expect(rows.reduce(0) { $0 + ($1["HIT"] ?? 0) } == 2)
            let stats = try decode(try await edges.request(.GET, "/__edge/stats").body)
            let top = try #require(stats["topStreams"] as? [[String: Any]])
            #expect(top.first?["stream"] as? String == "hist")
            #expect(top.first?["requests"] as? Int == 4)  // the PUT and three reads
            // Bad history parameters are ignored, never an error.
            #expect(try await edges.request(.GET, "/__edge/stats?since=-5&history=week").status == 200)
        }
    }
}
