import Foundation
import NIOHTTP1
@testable import OriginServer
import TestSupport
import Testing

/// JSON helpers shared by the stats tests.
private enum StatsJSON {
    static func decode(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// Rows of `history` as dictionaries keyed by column name.
    static func rows(_ json: [String: Any]) throws -> [[String: Double]] {
        let history = try #require(json["history"] as? [String: Any])
        let columns = try #require(history["columns"] as? [String])
        let rows = try #require(history["rows"] as? [[Any]])
        for row in rows { #expect(row.count == columns.count) }
        return rows.map { row in
            Dictionary(uniqueKeysWithValues: zip(columns, row).compactMap { name, value in (value as? NSNumber).map { (name, $0.doubleValue) } })
        }
    }

    static func sum(_ rows: [[String: Double]], _ column: String) -> Double {
        rows.reduce(0) { $0 + ($1[column] ?? 0) }
    }
}

/// The history and busiest streams behind `/__origin/stats`, counted by `OriginMetrics`
/// without I/O.
@Suite("Origin: stats history and top streams")
struct OriginStatsHistoryTests {
    @Test func columnsFollowTheOperationsInOrder() {
        #expect(OriginOperation.allCases.enumerated().allSatisfy { $0.offset == $0.element.ordinal })
        #expect(Array(OriginMetrics.historyColumns[2..<(2 + OriginOperation.allCases.count)]) == OriginOperation.allCases.map(\.rawValue))
        #expect(Set(OriginMetrics.historyColumns).count == OriginMetrics.historyColumns.count)
        #expect(OriginMetrics.historyColumns.contains("requests") && OriginMetrics.historyColumns.contains("reads"))
    }

    @Test func eachSecondHoldsItsOwnCountsAndTheGaugesAtItsEnd() throws {
        let metrics = OriginMetrics()
        metrics.request(.create, status: 201, stream: "a", requestBytes: 5, appendedBytes: 5)
        metrics.request(.append, status: 204, stream: "a", requestBytes: 3, appends: 1, appendedBytes: 3)
        metrics.request(.read, status: 200, stream: "a", responseBytes: 8)
        metrics.request(.read, status: 404, stream: "b", responseBytes: 17)
        metrics.request(.metrics, status: 200, responseBytes: 100)
        metrics.sample(at: 1_000, openConnections: 2, streams: 1)
        metrics.liveReaderStarted("a", .longPoll)
        metrics.request(.append, status: 503, stream: "a", requestBytes: 2)
        metrics.sample(at: 1_001, openConnections: 3, streams: 1)

        let json = try StatsJSON.decode(metrics.json(history: .seconds, openConnections: 3, streams: 1, now: 1_001))
        let seconds = try StatsJSON.rows(json)
        #expect(seconds.count == 2)
        let first = seconds[0], second = seconds[1]
        #expect(first["time"] == 1_000 && first["span"] == 1 && second["time"] == 1_001 && second["span"] == 1)
        #expect(first["create"] == 1 && first["append"] == 1 && first["read"] == 2 && first["metrics"] == 1 && first["sse"] == 0)
        #expect(first["requests"] == 5 && first["stream_requests"] == 4 && first["reads"] == 2)
        #expect(first["request_bytes"] == 8 && first["response_bytes"] == 125)
        #expect(first["appends"] == 1 && first["appended_bytes"] == 8)
        #expect(first["client_errors"] == 1 && first["server_errors"] == 0)
        #expect(first["open_connections"] == 2 && first["open_long_polls"] == 0 && first["streams"] == 1)
        #expect(second["requests"] == 1 && second["append"] == 1 && second["appends"] == 0 && second["server_errors"] == 1)
        #expect(second["request_bytes"] == 2 && second["open_long_polls"] == 1 && second["open_connections"] == 3)

        // Totals since the start, and the gauges now.
        #expect(json["requestsTotal"] as? Int == 6 && json["streamRequestsTotal"] as? Int == 5 && json["readsTotal"] as? Int == 2)
        let requests = try #require(json["requests"] as? [String: Int])
        #expect(requests["read"] == 2 && requests["append"] == 2 && requests["long_poll"] == 0 && requests.count == OriginOperation.allCases.count)
        #expect(json["appends"] as? Int == 1 && json["appendedBytes"] as? Int == 8)
        #expect(json["clientErrors"] as? Int == 1 && json["serverErrors"] as? Int == 1)
        #expect(json["openLongPolls"] as? Int == 1 && json["liveReaders"] as? Int == 1 && json["openConnections"] as? Int == 3)
        #expect(json["startedAt"] as? Int == 1_000 && json["now"] as? Int == 1_001 && json["streams"] as? Int == 1)

        // What came after the first second; the minute in progress; no history unless asked.
        let later = try StatsJSON.decode(metrics.json(history: .secondsAfter(1_000), openConnections: 3, streams: 1, now: 1_001))
        #expect(try StatsJSON.rows(later).map { $0["time"] } == [1_001])
        let minutes = try StatsJSON.rows(StatsJSON.decode(metrics.json(history: .minutes, openConnections: 3, streams: 1, now: 1_001)))
        #expect(minutes.count == 1)
        #expect(minutes[0]["time"] == 960 && minutes[0]["span"] == 2 && minutes[0]["requests"] == 6 && minutes[0]["open_long_polls"] == 1)
        let minuteHistory = try #require(try StatsJSON.decode(metrics.json(history: .minutes, openConnections: 0, streams: 0, now: 0))["history"] as? [String: Any])
        #expect(minuteHistory["step"] as? Int == 60)
        #expect(try StatsJSON.decode(metrics.json(openConnections: 3, streams: 1, now: 1_001))["history"] == nil)
    }

    @Test func topStreamsAreTheBusiestWithTheirSizesAndReaders() throws {
        let metrics = OriginMetrics()
        for _ in 0..<3 { metrics.request(.append, status: 204, stream: "busy", requestBytes: 10, appends: 1, appendedBytes: 10) }
        for _ in 0..<2 { metrics.request(.read, status: 200, stream: "busy", responseBytes: 30) }
        metrics.request(.sse, status: 200, stream: "busy")
        metrics.sent(bytes: 40, stream: "busy")
        metrics.request(.head, status: 200, stream: "quiet")
        metrics.request(.read, status: 404, stream: "gone")
        metrics.liveReaderStarted("busy", .sse)
        metrics.liveReaderStarted("busy", .longPoll)
        metrics.liveReaderStarted("quiet", .longPoll)
        metrics.liveReaderEnded("quiet", .longPoll)
        let sizes: [String: UInt64] = ["busy": 30, "quiet": 0]
        let json = try StatsJSON.decode(metrics.json(openConnections: 2, streams: 2, now: 0, size: { sizes[$0] }))
        let top = try #require(json["topStreams"] as? [[String: Any]])
        #expect(top.first?["stream"] as? String == "busy")
        #expect(Set(top.compactMap { $0["stream"] as? String }) == ["busy", "quiet", "gone"])
        let busy = top[0]
        #expect(busy["requests"] as? Int == 6 && busy["error"] as? Int == 0)
        #expect(busy["appends"] as? Int == 3 && busy["appendedBytes"] as? Int == 30 && busy["reads"] as? Int == 3)
        #expect(busy["responseBytes"] as? Int == 100)
        #expect(busy["liveReaders"] as? Int == 2 && busy["sizeBytes"] as? Int == 30)
        let quiet = try #require(top.first { $0["stream"] as? String == "quiet" })
        #expect(quiet["liveReaders"] as? Int == 0 && quiet["sizeBytes"] as? Int == 0 && quiet["reads"] as? Int == 0)
        // A stream the store no longer has is listed without a size.
        let gone = try #require(top.first { $0["stream"] as? String == "gone" })
        #expect(gone["sizeBytes"] is NSNull)
        #expect(json["topStreamsRequests"] as? Int == 8 && json["topStreamsTracked"] as? Int == OriginMetrics.trackedStreams)
        #expect(json["openSSE"] as? Int == 1 && json["openLongPolls"] as? Int == 1 && json["liveReaders"] as? Int == 2)
        // The SSE events sent count in the totals too.
        #expect(json["responseBytes"] as? Int == 100)
    }

    /// Only the 20 busiest are listed, of up to `trackedStreams` the sketch follows.
    @Test func theListIsBounded() throws {
        let metrics = OriginMetrics()
        for stream in 0..<(OriginMetrics.trackedStreams + 50) {
            for _ in 0...(stream % 7) { metrics.request(.read, status: 200, stream: "s\(stream)") }
        }
        let json = try StatsJSON.decode(metrics.json(openConnections: 0, streams: 0, now: 0))
        let top = try #require(json["topStreams"] as? [[String: Any]])
        #expect(top.count == OriginMetrics.shownStreams)
        let counts = top.compactMap { $0["requests"] as? Int }
        #expect(counts == counts.sorted(by: >))
    }

    /// The Prometheus counters move with the same calls (one place counts both).
    @Test func prometheusCountersMoveToo() {
        let metrics = OriginMetrics()
        metrics.request(.append, status: 204, stream: "a", requestBytes: 4, appends: 1, appendedBytes: 4)
        metrics.request(.create, status: 201, stream: "b", requestBytes: 6, appendedBytes: 6)
        metrics.sent(bytes: 9, stream: "a")
        metrics.liveReaderStarted("a", .sse)
        let text = metrics.registry.emitToString()
        #expect(text.contains(#"ds_origin_requests_total{operation="append",status="204"} 1"#))
        #expect(text.contains(#"ds_origin_requests_total{operation="create",status="201"} 1"#))
        #expect(text.contains("ds_origin_appends_total 1"))
        #expect(text.contains("ds_origin_appended_bytes_total 10"))
        #expect(text.contains("ds_origin_request_bytes_total 10"))
        #expect(text.contains("ds_origin_response_bytes_total 9"))
        #expect(text.contains("ds_origin_open_sse_connections 1"))
        metrics.liveReaderEnded("a", .sse)
        #expect(metrics.registry.emitToString().contains("ds_origin_open_sse_connections 0"))
    }
}

/// A running origin samples once a second by itself and serves its stats and page. Requests go
/// to the origin directly, whatever the topology (an edge would answer reads from its cache).
@Suite("Origin: stats and dashboard over HTTP")
struct OriginStatsEndToEndTests {
    /// Polls `condition` until it holds: up to 30 s, so a loaded machine is slow, not failing.
    private func eventually(_ condition: () async throws -> Bool) async throws {
        for _ in 0..<600 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("condition never became true")
    }

    @Test func aRunningOriginServesItsHistoryAndBusiestStreams() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let port = origin.server.port!
            func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], _ text: String? = nil) async throws -> TestResponse {
                try await TestHTTP.request(port: port, method, path, headers: headers, body: text.map { Array($0.utf8) })
            }
            let name = "dash-\(UInt64.random(in: 0...UInt64.max))"
            let path = "/v1/stream/\(name)"
            #expect(try await send(.PUT, path, headers: [("Content-Type", "text/plain")], "hello").status == 201)
            for _ in 0..<3 { #expect(try await send(.POST, path, headers: [("Content-Type", "text/plain")], "12345").status == 204) }
            for _ in 0..<2 { #expect(try await send(.GET, "\(path)?offset=-1").text == "hello123451234512345") }

            var rows: [[String: Double]] = []
            try await eventually {
                let stats = try await send(.GET, "/__origin/stats?history=hour")
                rows = try StatsJSON.rows(try StatsJSON.decode(stats.body))
                return StatsJSON.sum(rows, "appends") == 3 && StatsJSON.sum(rows, "reads") == 2
            }
            #expect(StatsJSON.sum(rows, "create") == 1 && StatsJSON.sum(rows, "append") == 3 && StatsJSON.sum(rows, "read") == 2)
            #expect(StatsJSON.sum(rows, "appended_bytes") == 20)
            #expect(StatsJSON.sum(rows, "requests") >= 6 && StatsJSON.sum(rows, "stream_requests") == 6)
            #expect(rows.last?["streams"] == 1)
            #expect(rows.map { $0["time"] ?? 0 } == rows.map { $0["time"] ?? 0 }.sorted())

            let response = try await send(.GET, "/__origin/stats")
            #expect(response.status == 200)
            #expect(response.header("Cache-Control") == "no-store")
            #expect(response.header("Content-Type") == "application/json")
            let stats = try StatsJSON.decode(response.body)
            #expect(stats["history"] == nil)
            #expect(stats["appends"] as? Int == 3 && stats["appendedBytes"] as? Int == 20 && stats["streams"] as? Int == 1)
            let top = try #require(stats["topStreams"] as? [[String: Any]])
            let entry = try #require(top.first { $0["stream"] as? String == name })
            #expect(entry["requests"] as? Int == 6)  // the PUT, three appends, two reads
            #expect(entry["appends"] as? Int == 3 && entry["appendedBytes"] as? Int == 20 && entry["reads"] as? Int == 2)
            #expect(entry["sizeBytes"] as? Int == 20)
            // Asking for the stats read nothing and changed nothing of the stream.
            #expect(try await send(.GET, "\(path)?offset=-1").text == "hello123451234512345")

            // Anything else in the query asks for no history, and is never an error.
            let odd = try await send(.GET, "/__origin/stats?since=-5&history=week")
            #expect(odd.status == 200)
            #expect(try StatsJSON.decode(odd.body)["history"] == nil)
            // Only GET: nothing else is answered there.
            #expect(try await send(.POST, "/__origin/stats", headers: [("Content-Type", "text/plain")], "x").status == 404)
        }
    }

    /// The page needs nothing from anywhere else, polls the stats path, and names what a
    /// browser test reads.
    @Test func dashboardIsSelfContainedAndPollsTheStatsPath() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let page = try await TestHTTP.request(port: origin.server.port!, .GET, "/__origin/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(page.header("Cache-Control") == "no-store")
            let html = page.text.lowercased()
            #expect(html.hasPrefix("<!doctype html>"))
            #expect(html.contains("<script"))
            #expect(html.range(of: #"<script[^>]*\ssrc\s*="#, options: .regularExpression) == nil)
            #expect(html.components(separatedBy: "<link").count == 2 && html.contains(#"<link rel="icon" href="data:,">"#))  // an empty icon only
            #expect(!html.contains("@import"))
            #expect(!html.contains("http://"))
            #expect(!html.contains("https://"))
            #expect(!html.contains("//cdn"))
            #expect(page.text.contains("'/__origin/stats'"))
            // A global function named like a window property the page cannot replace (`top`, …)
            // is a SyntaxError in a browser: the page would never load.
            #expect(page.text.range(of: #"function\s+(top|window|document|location|parent|frames)\s*\("#, options: .regularExpression) == nil)
            for hook in ["data-stat=", "data-stream=", "dataset.loaded = 'true'", "DS.chart("] {
                #expect(page.text.contains(hook), "page lacks \(hook)")
            }
            let stats = try await TestHTTP.request(port: origin.server.port!, .GET, "/__origin/stats")
            let json = try StatsJSON.decode(stats.body)
            for key in ["requestsTotal", "streamRequestsTotal", "appends", "requestBytes", "responseBytes", "streams", "openConnections", "liveReaders", "topStreams"] {
                #expect(json[key] != nil, "stats lacks \(key)")
            }
        }
    }

    /// The paths are outside the stream prefix: a stream named `__origin` is a stream like any other.
    @Test func aStreamNamedLikeThePagesIsUnaffected() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let port = origin.server.port!
            let path = "/v1/stream/__origin"
            #expect(try await TestHTTP.request(port: port, .PUT, path, headers: [("Content-Type", "text/plain")], body: Array("mine".utf8)).status == 201)
            let read = try await TestHTTP.request(port: port, .GET, "\(path)?offset=-1")
            #expect(read.status == 200 && read.text == "mine")
            let stats = try StatsJSON.decode(try await TestHTTP.request(port: port, .GET, "/__origin/stats").body)
            let top = try #require(stats["topStreams"] as? [[String: Any]])
            #expect(top.first { $0["stream"] as? String == "__origin" }?["sizeBytes"] as? Int == 4)
        }
    }
}
