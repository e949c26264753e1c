import Testing

@testable import LoadTest

@Suite("Text and HTML reports")
struct ReportTests {
    // MARK: Text

    @Test func textReportFlagsDeliveryProblemsAtTopAndBottom() {
        var run = ReportFixture.run()
        run.delivery.lost = 3
        run.delivery.duplicated = 1
        run.delivery.readersWithProblems = 2
        let text = TextReport.render(run)
        let banner = "!!! DELIVERY PROBLEMS: 3 lost, 1 duplicated, 0 out of order, 0 corrupt in 2 readers !!!"
        let lines = text.split(separator: "\n").map(String.init)
        let bannerLines = lines.indices.filter { lines[$0] == banner }
        #expect(bannerLines.count == 2)
        #expect((bannerLines.first ?? .max) < 10, "the first banner must be near the top")
        #expect(bannerLines.last == lines.indices.last)
        #expect(!text.contains("delivery: clean"))
    }

    @Test func textReportSaysCleanWhenClean() {
        let text = TextReport.render(ReportFixture.run())
        #expect(text.contains("delivery: clean (0 lost, 0 duplicated, 0 out of order)"))
        #expect(!text.contains("!!!"))
    }

    @Test func textReportFormatsFigures() {
        var run = ReportFixture.run()
        run.throughput.bytesPerSecond = 1_234_567
        run.collapseRatio = 1000
        let text = TextReport.render(run)
        #expect(text.contains("1.2 MB/s"))
        #expect(text.contains("1,000.0×"))
        #expect(text.contains("99.0%"))
        #expect(text.contains("60.00"))
        let catchUp = text.range(of: "catch_up")
        let longPoll = text.range(of: "long_poll")
        #expect(catchUp != nil && longPoll != nil && catchUp!.lowerBound < longPoll!.lowerBound, "keys sorted")

        run.collapseRatio = nil
        run.originRequests = nil
        let bare = TextReport.render(run)
        #expect(bare.contains("n/a"))
        #expect(!bare.contains("origin requests\n"))
    }

    @Test func comparisonComputesRatiosAgainstTheBaseline() throws {
        var baseline = ReportFixture.run(target: "http://127.0.0.1:8080")
        var edge = ReportFixture.run(target: "http://127.0.0.1:8081")
        baseline.latency.p99 = 10
        edge.latency.p99 = 5
        baseline.throughput.messagesPerSecond = 1000
        edge.throughput.messagesPerSecond = 2000
        let text = TextReport.renderComparison([baseline, edge])
        let p99 = try #require(text.split(separator: "\n").first { $0.hasPrefix("p99 ms") })
        #expect(p99.hasSuffix("0.50×"))
        #expect(p99.contains("10.00") && p99.contains("5.00"))
        let rate = try #require(text.split(separator: "\n").first { $0.hasPrefix("messages/s") })
        #expect(rate.hasSuffix("2.00×"))
        let lost = try #require(text.split(separator: "\n").first { $0.hasPrefix("lost") })
        #expect(!lost.contains("×"), "no ratio for counts of problems")
    }

    @Test func comparisonRatioIsNotAvailableWithoutABaselineValue() throws {
        var baseline = ReportFixture.run(target: "http://origin:8080")
        let edge = ReportFixture.run(target: "http://edge:8081")
        baseline.latency.p50 = 0
        baseline.originRequests = nil
        let text = TextReport.renderComparison([baseline, edge])
        let p50 = try #require(text.split(separator: "\n").first { $0.hasPrefix("p50 ms") })
        #expect(p50.hasSuffix("n/a"))
        let origin = try #require(text.split(separator: "\n").first { $0.hasPrefix("origin requests") })
        #expect(origin.hasSuffix("n/a"))
        #expect(ReportFormat.multiplier(5, baseline: 0) == "n/a")
        #expect(ReportFormat.multiplier(nil, baseline: 3) == "n/a")
        #expect(ReportFormat.multiplier(4.2, baseline: 10) == "0.42×")
        #expect(!text.lowercased().contains("nan") && !text.lowercased().contains("inf"))
    }

    @Test func comparisonFlagsTheRunWithProblems() {
        var edge = ReportFixture.run(target: "http://edge:8081")
        edge.delivery.outOfOrder = 4
        edge.delivery.readersWithProblems = 1
        let text = TextReport.renderComparison([ReportFixture.run(), edge])
        #expect(text.contains("!!! DELIVERY PROBLEMS in #2 (http://edge:8081): 0 lost, 0 duplicated, 4 out of order"))
        #expect(!text.contains("#1 (http"))
        #expect(TextReport.renderComparison([ReportFixture.run()]).contains("delivery: clean in all 1 runs"))
    }

    // MARK: HTML

    @Test func htmlIsSelfContained() {
        let html = HTMLReport.render([ReportFixture.run(), ReportFixture.run(target: "https://edge.example:443/")])
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        for forbidden in ["src=", "href=", "<link", "<script", "@import", "url(", "@font-face"] {
            #expect(!html.lowercased().contains(forbidden), "found \(forbidden)")
        }
        for tag in ReportFixture.tags(in: html) {
            #expect(!tag.lowercased().contains("http"), "URL inside a tag: \(tag)")
        }
    }

    @Test func htmlHasOneSVGPerChart() {
        let runs = [ReportFixture.run(), ReportFixture.run(target: "http://edge:8081")]
        let html = HTMLReport.render(runs)
        // CDF, throughput, requests, then one p99 timeline per run.
        #expect(html.components(separatedBy: "<svg").count - 1 == 3 + runs.count)
        #expect(html.components(separatedBy: "</svg>").count - 1 == 3 + runs.count)
        #expect(html.contains("<polyline"))
        #expect(html.contains("<rect"))
    }

    @Test func htmlEscapesStrings() {
        var run = ReportFixture.run(target: "http://127.0.0.1:1/<x>&\"")
        run.scenario.name = "it's <b>"
        let html = HTMLReport.render([run])
        #expect(!html.contains("<x>"))
        #expect(!html.contains("<b>"))
        #expect(html.contains("http://127.0.0.1:1/&lt;x&gt;&amp;&quot;"))
        #expect(html.contains("it&#39;s &lt;b&gt;"))
    }

    @Test func htmlShowsRedBannerOrGreenBadge() {
        let clean = HTMLReport.render([ReportFixture.run()])
        #expect(clean.contains("badge clean"))
        #expect(!clean.contains("DELIVERY PROBLEMS"))

        var broken = ReportFixture.run(target: "http://edge:8081")
        broken.delivery.corrupt = 7
        let html = HTMLReport.render([ReportFixture.run(), broken])
        #expect(html.contains("class=\"banner\""))
        #expect(html.contains("DELIVERY PROBLEMS"))
        #expect(!html.contains("badge clean"))
    }

    @Test(arguments: [1, 2], [false, true])
    func htmlWithEmptyOrNonFiniteDataHasNoNaNOrInfinity(runCount: Int, nonFinite: Bool) throws {
        var run = ReportFixture.run()
        run.latency = .empty
        run.timeline = []
        run.originRequests = nil
        run.collapseRatio = nil
        run.edges = []
        run.readerRequests = [:]
        run.throughput = ThroughputSummary(messagesPerSecond: 0, bytesPerSecond: 0, appendsPerSecond: 0)
        run.elapsedSeconds = 0
        if nonFinite {
            // Figures derived by dividing by a zero-length interval must not poison the charts.
            run.latency.cdf = [CDFPoint(percentile: .nan, millis: 3), CDFPoint(percentile: 100, millis: .infinity)]
            run.timeline = [
                TimelinePoint(
                    second: .nan, messagesPerSecond: .infinity, bytesPerSecond: .nan, readerRequestsPerSecond: 0,
                    originRequestsPerSecond: .nan, connections: 0, p99Millis: .nan, errors: 0)
            ]
            run.collapseRatio = .infinity
        }
        let html = HTMLReport.render(Array(repeating: run, count: runCount))
        let values = try ReportFixture.numericSVGAttributes(in: html)
        #expect(values.count > 50)
        for value in values {
            #expect(!value.lowercased().contains("nan") && !value.lowercased().contains("inf"), "\(value)")
        }
        if !nonFinite {
            #expect(html.contains("no latency samples"))
            #expect(html.contains("no timeline"))
        }
    }

    @Test func cdfPercentileScaleIsHDRLog() {
        let x = HTMLReport.percentileDecades
        #expect(x(0) == 0)
        #expect(abs(x(90) - 1) < 1e-9)
        #expect(abs(x(99) - 2) < 1e-9)
        #expect(abs(x(99.9) - 3) < 1e-9)
        #expect(x(50) < x(90) && x(90) < x(99) && x(99) < x(99.9) && x(99.9) < x(99.99))
        for p in [100, 150, -5, .infinity, .nan] {
            #expect(x(p).isFinite)
        }
        #expect(x(100) >= x(99.99))
    }
}

/// Sample results for the report tests.
private enum ReportFixture {
    static func run(target: String = "http://127.0.0.1:8080") -> LoadTestResult {
        let cdf = [0.0, 50, 90, 99, 99.9, 99.99, 100].map { p in
            CDFPoint(percentile: p, millis: 20 + p * 0.5 + (p > 99 ? 40 : 0))
        }
        let timeline = (1...10).map { second in
            TimelinePoint(
                second: Double(second), messagesPerSecond: 10_000, bytesPerSecond: 2_560_000,
                readerRequestsPerSecond: 120, originRequestsPerSecond: 3, connections: 1000,
                p99Millis: 95 + Double(second), errors: 0)
        }
        return LoadTestResult(
            scenario: ScenarioSummary(
                name: "fanout", kind: "live", streams: 10, readersPerStream: 100, writersPerStream: 1,
                appendsPerSecond: 10, messageBytes: 256, durationSeconds: 10),
            target: target, origin: "http://127.0.0.1:8080", startedAt: "2025-01-01T00:00:00Z", elapsedSeconds: 10,
            latencyKind: "delivery",
            latency: LatencySummary(count: 100_000, p50: 60, p90: 80, p99: 100, p999: 150, max: 200, mean: 62, cdf: cdf),
            delivery: DeliverySummary(readers: 1000, appended: 1000, expected: 100_000, received: 100_000),
            throughput: ThroughputSummary(messagesPerSecond: 10_000, bytesPerSecond: 2_560_000, appendsPerSecond: 100),
            readerRequests: ["long_poll": 1200, "catch_up": 1000],
            originRequests: ["append": 1000, "long_poll": 12, "read": 10],
            collapseRatio: 100,
            edges: [EdgeSummary(url: "http://127.0.0.1:8081", outcomes: ["HIT": 990, "MISS": 10],
                                upstreamRequests: ["long_poll": 12], hitRate: 0.99)],
            errors: ErrorSummary(),
            timeline: timeline)
    }

    /// The text of every start or end tag, `<...>`.
    static func tags(in html: String) -> [String] {
        var tags: [String] = []
        var current: String?
        for c in html {
            if c == "<" {
                current = "<"
            } else if c == ">", let tag = current {
                tags.append(tag + ">")
                current = nil
            } else {
                current?.append(c)
            }
        }
        return tags
    }

    /// Values of the SVG attributes that hold numbers.
    static func numericSVGAttributes(in html: String) throws -> [String] {
        let regex = try Regex(#"\b(x|y|x1|x2|y1|y2|cx|cy|r|width|height|points|viewBox|transform|d)="([^"]*)""#)
        return html.matches(of: regex).compactMap { $0.output[2].substring.map(String.init) }
    }
}
