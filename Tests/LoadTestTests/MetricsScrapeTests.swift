import Testing
@testable import LoadTest

@Suite("Prometheus text parsing and metrics figures")
struct MetricsScrapeTests {
    @Test func parsesCommentsLabelsAndPlainSamples() {
        let text = """
            # HELP ds_origin_requests_total Requests answered
            # TYPE ds_origin_requests_total counter
            ds_origin_requests_total{operation="read",status="200"} 42
            ds_origin_requests_total{ operation = "append" , status="204", } 7
            ds_origin_streams 3
            ds:recorded_rule_total{} 1
            """
        let samples = PrometheusText.parse(text)
        #expect(samples == [
            MetricSample(name: "ds_origin_requests_total", labels: ["operation": "read", "status": "200"], value: 42),
            MetricSample(name: "ds_origin_requests_total", labels: ["operation": "append", "status": "204"], value: 7),
            MetricSample(name: "ds_origin_streams", value: 3),
            MetricSample(name: "ds:recorded_rule_total", value: 1),
        ])
        #expect(PrometheusText.classify("# TYPE ds_origin_streams gauge") == .comment)
        #expect(PrometheusText.classify("   ") == .blank)
    }

    @Test func unescapesLabelValues() {
        let text = #"""
            m{path="C:\\dir",quote="say \"hi\"",multi="a\nb",odd="\t",tricky="a,b}c=\"d\""} 1
            m{utf="Grüße 🚀"} 2
            """#
        let samples = PrometheusText.parse(text)
        #expect(samples.count == 2)
        #expect(samples.first?.labels == [
            "path": #"C:\dir"#,
            "quote": #"say "hi""#,
            "multi": "a\nb",
            "odd": #"\t"#,
            "tricky": #"a,b}c="d""#,
        ])
        #expect(samples.last?.labels["utf"] == "Grüße 🚀")
    }

    @Test func readsSpecialAndScientificValues() throws {
        let text = """
            a 1
            b -1.5
            c 1e3
            d 2.5E-3
            e 1e+20
            f +Inf
            g -Inf
            h NaN
            i inf
            j .5
            """
        let snapshot = MetricsSnapshot(parsing: text)
        #expect(snapshot.value("a") == 1)
        #expect(snapshot.value("b") == -1.5)
        #expect(snapshot.value("c") == 1000)
        #expect(snapshot.value("d") == 0.0025)
        #expect(snapshot.value("e") == 1e20)
        #expect(snapshot.value("f") == .infinity)
        #expect(snapshot.value("g") == -.infinity)
        #expect(try #require(snapshot.value("h")).isNaN)
        #expect(snapshot.value("i") == .infinity)
        #expect(snapshot.value("j") == 0.5)
    }

    @Test func acceptsTimestampsExemplarsBlankLinesAndCRLF() {
        let text = "# HELP x things\r\n\r\nx{k=\"v\"} 5 1712345678901\r\n\r\ny 6\t-17\n  z 7 # {trace_id=\"abc\"} 1.0\n\nw 8"
        let samples = PrometheusText.parse(text)
        #expect(samples == [
            MetricSample(name: "x", labels: ["k": "v"], value: 5),
            MetricSample(name: "y", value: 6),
            MetricSample(name: "z", value: 7),
            MetricSample(name: "w", value: 8),
        ])
    }

    @Test func readsQuotedUTF8MetricNames() {
        let samples = PrometheusText.parse(#"{"http.requests", "k.1"="v"} 3"#)
        #expect(samples == [MetricSample(name: "http.requests", labels: ["k.1": "v"], value: 3)])
    }

    @Test(arguments: [
        "garbage",
        "no_value",
        "no_value{a=\"b\"}",
        "1metric 1",
        "m{a=\"unterminated} 1",
        "m{a=\"b\"",
        "m{a=b} 1",
        "m{a=\"1\",a=\"2\"} 1",
        "m{,} 1",
        "m{a=\"1\",,b=\"2\"} 1",
        "m{=\"x\"} 1",
        "{a=\"b\"} 1",
        "m abc",
        "m 1 2 3",
        "m 1 notatimestamp",
        "m-dash 1",
        "m 0x",
        "m nan(1)",
        "m{a=\"b\"} 1 \\",
        "m{\"name\",\"other\"} 1",
        "named{\"again\"} 1",
        "m{a=\"trailing backslash\\",
        "}",
        "{",
        "\"",
        "m{a=\"\u{FFFD}\"} ∞",
    ])
    func skipsMalformedLines(line: String) {
        #expect(PrometheusText.classify(line) == .malformed)
        // The garbage must not swallow or corrupt the lines around it.
        let samples = PrometheusText.parse("before 1\n\(line)\nafter 2\n")
        #expect(samples == [MetricSample(name: "before", value: 1), MetricSample(name: "after", value: 2)])
    }

    @Test func survivesArbitraryBytes() {
        // A fixed-seed generator, so a failure reproduces.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let alphabet = Array(#"ab_:{}=",\ #1.e+-InfNa"# + "\n\r\t\u{0}é🚀")
        for _ in 0..<2_000 {
            let length = Int(next() % 40)
            let line = String((0..<length).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
            let samples = PrometheusText.parse(line)
            // Whatever it made of that, every sample it produced has a usable name.
            #expect(samples.allSatisfy { !$0.name.isEmpty })
            _ = MetricsSnapshot(samples).edgeSummary(url: "x")
        }
        // C-string float parsers stop at a NUL and would read this as 1.
        #expect(PrometheusText.classify("m 1\u{0}junk") == .malformed)
    }

    @Test func parsesSwiftPrometheusStyleOutput() throws {
        // As swift-prometheus 2.x renders an edge: HELP and TYPE per family, labels in
        // registration order, gauges as Doubles, histogram buckets from Double.description.
        let text = """
            # HELP ds_edge_requests_total Client requests by class and cache outcome
            # TYPE ds_edge_requests_total counter
            ds_edge_requests_total{class="catch_up",cache="HIT"} 1200
            ds_edge_requests_total{class="catch_up",cache="MISS"} 30
            ds_edge_requests_total{class="long_poll",cache="COLLAPSED"} 470
            ds_edge_requests_total{class="write",cache="PASS"} 50
            # HELP ds_edge_cache_bytes Bytes held by the cache, headers included
            # TYPE ds_edge_cache_bytes gauge
            ds_edge_cache_bytes 65536.0
            # HELP ds_edge_upstream_latency_seconds Time to a complete upstream answer
            # TYPE ds_edge_upstream_latency_seconds histogram
            ds_edge_upstream_latency_seconds_bucket{le="0.0005"} 0
            ds_edge_upstream_latency_seconds_bucket{le="0.001"} 4
            ds_edge_upstream_latency_seconds_bucket{le="0.0025"} 20
            ds_edge_upstream_latency_seconds_bucket{le="1.0"} 29
            ds_edge_upstream_latency_seconds_bucket{le="60.0"} 30
            ds_edge_upstream_latency_seconds_bucket{le="+Inf"} 30
            ds_edge_upstream_latency_seconds_sum 0.123456
            ds_edge_upstream_latency_seconds_count 30

            """
        let samples = PrometheusText.parse(text)
        #expect(samples.count == 13)
        let snapshot = MetricsSnapshot(samples)
        #expect(snapshot.value("ds_edge_requests_total", ["class": "long_poll", "cache": "COLLAPSED"]) == 470)
        #expect(snapshot.value("ds_edge_cache_bytes") == 65536)
        #expect(snapshot.value("ds_edge_upstream_latency_seconds_bucket", ["le": "+Inf"]) == 30)
        #expect(snapshot.value("ds_edge_upstream_latency_seconds_bucket", ["le": "0.001"]) == 4)
        #expect(snapshot.value("ds_edge_upstream_latency_seconds_sum") == 0.123456)
        #expect(snapshot.value("ds_edge_upstream_latency_seconds_count") == 30)
        let buckets = snapshot.sum("ds_edge_upstream_latency_seconds_bucket", groupedBy: "le")
        #expect(buckets.keys.sorted() == ["+Inf", "0.0005", "0.001", "0.0025", "1.0", "60.0"])
        #expect(snapshot.sum("ds_edge_requests_total") == 1750)
    }

    @Test func valueNeedsTheExactLabelSet() {
        let snapshot = MetricsSnapshot(parsing: """
            r{operation="read",status="200"} 10
            r{operation="read",status="404"} 2
            """)
        #expect(snapshot.value("r", ["operation": "read", "status": "404"]) == 2)
        #expect(snapshot.value("r", ["operation": "read"]) == nil)
        #expect(snapshot.value("r") == nil)
        #expect(snapshot.value("missing") == nil)
    }

    @Test func sumsSeriesWhoseLabelsIncludeTheFilter() {
        let snapshot = MetricsSnapshot(parsing: """
            r{operation="read",status="200"} 10
            r{operation="read",status="404"} 2
            r{operation="append",status="200"} 5
            r 100
            other{operation="read"} 1000
            """)
        #expect(snapshot.sum("r") == 117)
        #expect(snapshot.sum("r", where: ["operation": "read"]) == 12)
        #expect(snapshot.sum("r", where: ["status": "200"]) == 15)
        #expect(snapshot.sum("r", where: ["operation": "read", "status": "200"]) == 10)
        #expect(snapshot.sum("r", where: ["operation": "delete"]) == 0)
        #expect(snapshot.sum("nothing") == 0)
    }

    @Test func groupsSumsByLabelSkippingSeriesWithoutIt() {
        let snapshot = MetricsSnapshot(parsing: """
            e{class="catch_up",cache="HIT"} 10
            e{class="long_poll",cache="HIT"} 5
            e{class="catch_up",cache="MISS"} 3
            e 99
            """)
        #expect(snapshot.sum("e", groupedBy: "cache") == ["HIT": 15, "MISS": 3])
        #expect(snapshot.sum("e", groupedBy: "class") == ["catch_up": 13, "long_poll": 5])
        #expect(snapshot.sum("e", groupedBy: "nope").isEmpty)
    }

    @Test func deltaSubtractsCountsNewSeriesFromZeroAndTreatsDropsAsResets() {
        let before = MetricsSnapshot(parsing: """
            c{k="steady"} 100
            c{k="restarted"} 500
            c{k="vanished"} 7
            d 1
            """)
        let after = MetricsSnapshot(parsing: """
            c{k="steady"} 130
            c{k="restarted"} 20
            c{k="new"} 4
            d 1
            """)
        let delta = after.delta(since: before)
        #expect(delta.value("c", ["k": "steady"]) == 30)
        #expect(delta.value("c", ["k": "restarted"]) == 20)
        #expect(delta.value("c", ["k": "new"]) == 4)
        #expect(delta.value("c", ["k": "vanished"]) == nil)
        #expect(delta.value("d") == 0)
        #expect(delta.samples.count == 4)
        #expect(after.delta(since: MetricsSnapshot([])) == after)
        #expect(after.delta(since: after).sum("c") == 0)
    }

    @Test func samplesAreSortedAndLastDuplicateWins() {
        let snapshot = MetricsSnapshot(parsing: """
            b{x="2"} 1
            a 1
            b{x="1"} 1
            a 5
            """)
        #expect(snapshot.samples == [
            MetricSample(name: "a", value: 5),
            MetricSample(name: "b", labels: ["x": "1"], value: 1),
            MetricSample(name: "b", labels: ["x": "2"], value: 1),
        ])
    }

    @Test func originRequestsSkipOurOwnScrapes() {
        let before = MetricsSnapshot(parsing: """
            ds_origin_requests_total{operation="read",status="200"} 10
            ds_origin_requests_total{operation="metrics",status="200"} 3
            """)
        let after = MetricsSnapshot(parsing: """
            ds_origin_requests_total{operation="read",status="200"} 60
            ds_origin_requests_total{operation="read",status="404"} 2
            ds_origin_requests_total{operation="long_poll",status="200"} 30
            ds_origin_requests_total{operation="sse",status="200"} 4
            ds_origin_requests_total{operation="append",status="204"} 900
            ds_origin_requests_total{operation="metrics",status="200"} 4
            ds_origin_response_bytes_total 12345
            """)
        let delta = after.delta(since: before)
        #expect(delta.originRequestsByOperation() == ["read": 52, "long_poll": 30, "sse": 4, "append": 900])
        #expect(delta.originReadRequests() == 86)
        #expect(MetricsSnapshot.originReadOperations == ["read", "long_poll", "sse"])
        #expect(MetricsSnapshot([]).originReadRequests() == 0)
    }

    @Test func edgeSummaryHitRateCountsWhatTheCacheServedOverNonPass() throws {
        let snapshot = MetricsSnapshot(parsing: """
            ds_edge_requests_total{class="catch_up",cache="HIT"} 80
            ds_edge_requests_total{class="long_poll",cache="HIT"} 10
            ds_edge_requests_total{class="long_poll",cache="COLLAPSED"} 5
            ds_edge_requests_total{class="catch_up",cache="MISS"} 5
            ds_edge_requests_total{class="write",cache="PASS"} 10
            ds_edge_requests_total{class="other",cache="PASS"} 40
            ds_edge_requests_total{class="other",cache="MISS"} 40
            ds_edge_upstream_requests_total{class="catch_up"} 5
            ds_edge_upstream_requests_total{class="long_poll"} 1
            ds_edge_upstream_requests_total{class="write"} 10
            """)
        let summary = snapshot.edgeSummary(url: "http://edge-1:8081")
        #expect(summary.url == "http://edge-1:8081")
        #expect(summary.outcomes == ["HIT": 90, "COLLAPSED": 5, "MISS": 5, "PASS": 10])
        #expect(summary.upstreamRequests == ["catch_up": 5, "long_poll": 1, "write": 10])
        let hitRate = try #require(summary.hitRate)
        #expect(abs(hitRate - 0.95) < 1e-12)

        let stale = MetricsSnapshot(parsing: """
            ds_edge_requests_total{class="catch_up",cache="STALE"} 1
            ds_edge_requests_total{class="catch_up",cache="REVALIDATED"} 3
            ds_edge_requests_total{class="catch_up",cache="MISS"} 4
            """)
        // REVALIDATED sends the cached body after a 304: served from the cache, as the edge counts it.
        #expect(stale.edgeSummary(url: "e").hitRate == 0.5)
    }

    @Test func edgeSummaryHasNoHitRateWithoutCacheableReads() {
        let passOnly = MetricsSnapshot(parsing: """
            ds_edge_requests_total{class="write",cache="PASS"} 12
            ds_edge_requests_total{class="other",cache="HIT"} 3
            """)
        let summary = passOnly.edgeSummary(url: "e")
        #expect(summary.outcomes == ["PASS": 12])
        #expect(summary.hitRate == nil)

        let empty = MetricsSnapshot([]).edgeSummary(url: "e")
        #expect(empty == EdgeSummary(url: "e", outcomes: [:], upstreamRequests: [:], hitRate: nil))
    }

    @Test func collapseRatioIsReaderReadsPerOriginRead() {
        #expect(MetricsSnapshot.collapseRatio(readerReads: 1000, originReads: 10) == 100)
        #expect(MetricsSnapshot.collapseRatio(readerReads: 7, originReads: 7) == 1)
        #expect(MetricsSnapshot.collapseRatio(readerReads: 5, originReads: 0) == nil)
        #expect(MetricsSnapshot.collapseRatio(readerReads: 0, originReads: 0) == nil)
    }

    @Test func countsNeverTrapOnOddValues() {
        #expect(MetricsSnapshot.count(.nan) == 0)
        #expect(MetricsSnapshot.count(.infinity) == .max)
        #expect(MetricsSnapshot.count(-.infinity) == .min)
        #expect(MetricsSnapshot.count(1e300) == .max)
        #expect(MetricsSnapshot.count(2.5) == 3)
        #expect(MetricsSnapshot.count(41.6) == 42)
        let odd = MetricsSnapshot(parsing: """
            ds_origin_requests_total{operation="read",status="200"} +Inf
            ds_origin_requests_total{operation="sse",status="200"} +Inf
            ds_origin_requests_total{operation="long_poll",status="200"} NaN
            """)
        #expect(odd.originRequestsByOperation() == ["read": .max, "sse": .max, "long_poll": 0])
        #expect(odd.originReadRequests() == .max)
    }
}
