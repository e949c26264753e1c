import Foundation

/// Renders one run, or several runs of a comparison, as a single self-contained HTML5 document:
/// inline CSS and inline SVG charts, no scripts and nothing fetched from anywhere.
public enum HTMLReport {
    /// The whole document. The first run is the baseline of a comparison.
    public static func render(_ runs: [LoadTestResult]) -> String {
        let title = runs.first.map { "Load test: \($0.scenario.name)" } ?? "Load test"
        var body = ""
        if runs.isEmpty {
            body = "<h1>Load test</h1>\n<p>No runs to report.</p>\n"
        } else {
            body += header(runs)
            body += section("Summary", summaryTable(runs))
            body += section("Latency distribution", latencyChart(runs).render(label: "latency CDF"))
            body += section("Throughput over time", throughputChart(runs).render(label: "messages per second over time"))
            body += section("Reader requests vs origin requests", requestChart(runs).render(label: "reader vs origin requests"))
            body += section("Runs", runs.indices.map { runDetails(runs, index: $0) }.joined())
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>\(stylesheet)</style>
            </head>
            <body>
            \(body)</body>
            </html>

            """
    }

    /// Horizontal position of a percentile on the HDR "1/(1-p)" scale, in decades: 0 % → 0,
    /// 90 % → 1, 99 % → 2, 99.9 % → 3. Always finite; 100 % and beyond sit at decade 6.
    static func percentileDecades(_ percentile: Double) -> Double {
        guard percentile.isFinite else { return percentile > 0 ? maxDecades : 0 }
        let p = min(max(percentile, 0), 100 - 100 / pow(10, maxDecades))
        return log10(100 / (100 - p))
    }

    private static let maxDecades = 6.0

    /// Run colours, in order; the baseline is always the first.
    static let palette = ["#1f6fb5", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#8d6e00", "#495057"]

    static func color(_ index: Int) -> String {
        palette[index % palette.count]
    }

    /// Escapes text for element content and attribute values alike.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: Sections

    private static func section(_ title: String, _ content: String) -> String {
        "<section>\n<h2>\(escape(title))</h2>\n\(content)</section>\n"
    }

    /// "#2 http://edge:8081"; the first of several runs is marked as the baseline.
    private static func runName(_ runs: [LoadTestResult], _ index: Int) -> String {
        "#\(index + 1) \(runs[index].target)" + (index == 0 && runs.count > 1 ? " (baseline)" : "")
    }

    private static func swatch(_ index: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(color(index))\"></span>"
    }

    private static func header(_ runs: [LoadTestResult]) -> String {
        let first = runs[0]
        let s = first.scenario
        var html = "<header>\n<h1>Load test: \(escape(s.name)) <span class=\"kind\">\(escape(s.kind))</span></h1>\n"
        html += "<p class=\"meta\">\(escape(ReportFormat.scenarioShape(s)))</p>\n"
        html += "<p class=\"meta\">started \(escape(first.startedAt)) · measured \(escape(ReportFormat.seconds(first.elapsedSeconds)))"
        html += " · \(runs.count) run\(runs.count == 1 ? "" : "s") · \(escape(first.latencyKind)) latency</p>\n"
        html += "<ul class=\"targets\">\n"
        for (index, run) in runs.enumerated() {
            html += "<li>\(swatch(index))\(escape(runName(runs, index)))"
            html += " <span class=\"muted\">origin \(escape(run.origin))</span></li>\n"
        }
        html += "</ul>\n"

        let troubled = runs.indices.filter { !runs[$0].deliveryIsClean }
        if troubled.isEmpty {
            html += "<p class=\"badge clean\">✓ delivery clean: 0 lost, 0 duplicated, 0 out of order</p>\n"
        } else {
            html += "<div class=\"banner\"><strong>DELIVERY PROBLEMS</strong>\n<ul>\n"
            for index in troubled {
                let run = runs[index]
                html += "<li>\(escape(runName(runs, index))): \(escape(ReportFormat.deliveryProblems(run.delivery)))</li>\n"
            }
            html += "</ul>\n</div>\n"
        }
        return html + "</header>\n"
    }

    private static func summaryTable(_ runs: [LoadTestResult]) -> String {
        var html = "<table class=\"figures\">\n<thead><tr><th></th>"
        for (index, run) in runs.enumerated() {
            html += "<th>\(swatch(index))#\(index + 1) \(escape(ReportFormat.shortTarget(run.target)))"
            html += index == 0 && runs.count > 1 ? "<br><span class=\"muted\">baseline</span></th>" : "</th>"
        }
        for index in runs.indices.dropFirst() {
            html += "<th class=\"ratio\">#\(index + 1) vs #1</th>"
        }
        html += "</tr></thead>\n<tbody>\n"

        for row in ReportComparisonRow.rows(for: runs) {
            let flagsProblems = row.label == "lost" || row.label == "duplicated" || row.label == "errors"
            html += "<tr><th>\(escape(row.label))</th>"
            for value in row.values {
                let bad = flagsProblems && (value ?? 0) > 0
                html += "<td\(bad ? " class=\"bad\"" : "")>\(escape(row.format(value)))</td>"
            }
            let ratios = row.comparesToBaseline ? row.ratios() : Array(repeating: "", count: max(runs.count - 1, 0))
            html += ratios.map { "<td class=\"ratio\">\(escape($0))</td>" }.joined()
            html += "</tr>\n"
        }
        html += "<tr><th>delivery</th>"
        for run in runs {
            html += run.deliveryIsClean ? "<td class=\"good\">clean</td>" : "<td class=\"bad\">PROBLEMS</td>"
        }
        html += String(repeating: "<td class=\"ratio\"></td>", count: max(runs.count - 1, 0))
        return html + "</tr>\n</tbody>\n</table>\n"
    }

    private static func runDetails(_ runs: [LoadTestResult], index: Int) -> String {
        let run = runs[index]
        var html = "<article class=\"run\">\n<h3>\(swatch(index))\(escape(runName(runs, index)))</h3>\n"
        if !run.deliveryIsClean {
            html += "<p class=\"banner small\">DELIVERY PROBLEMS: \(escape(ReportFormat.deliveryProblems(run.delivery)))</p>\n"
        }
        html += "<div class=\"columns\">\n"

        let l = run.latency
        let d = run.delivery
        let t = run.throughput
        html += keyValueTable("Figures", [
            ("latency (\(run.latencyKind))", "\(ReportFormat.count(l.count)) samples"),
            ("p50 / p90 / p99 ms", "\(ReportFormat.millis(l.p50)) / \(ReportFormat.millis(l.p90)) / \(ReportFormat.millis(l.p99))"),
            ("p99.9 / max / mean ms", "\(ReportFormat.millis(l.p999)) / \(ReportFormat.millis(l.max)) / \(ReportFormat.millis(l.mean))"),
            ("readers", ReportFormat.count(d.readers)),
            ("appended", ReportFormat.count(d.appended)),
            ("expected / received", "\(ReportFormat.count(d.expected)) / \(ReportFormat.count(d.received))"),
            ("lost / duplicated", "\(ReportFormat.count(d.lost)) / \(ReportFormat.count(d.duplicated))"),
            ("out of order / corrupt", "\(ReportFormat.count(d.outOfOrder)) / \(ReportFormat.count(d.corrupt))"),
            ("readers with problems", ReportFormat.count(d.readersWithProblems)),
            ("before ack", ReportFormat.count(d.beforeAck)),
            ("messages/s", ReportFormat.number(t.messagesPerSecond, decimals: 1)),
            ("bytes/s", ReportFormat.bytesPerSecond(t.bytesPerSecond)),
            ("appends/s", ReportFormat.number(t.appendsPerSecond, decimals: 1)),
            ("collapse ratio", ReportFormat.collapse(run.collapseRatio)),
        ])

        var requests = run.readerRequests.sorted { $0.key < $1.key }.map { ("reader \($0.key)", ReportFormat.count($0.value)) }
        if let origin = run.originRequests {
            requests += origin.sorted { $0.key < $1.key }.map { ("origin \($0.key)", ReportFormat.count($0.value)) }
        } else {
            requests.append(("origin", "n/a (not scraped)"))
        }
        let e = run.errors
        var errors = [("connection errors", ReportFormat.count(e.connectionErrors))]
        errors += e.statuses.sorted { $0.key < $1.key }.map { ("status \($0.key)", ReportFormat.count($0.value)) }
        errors.append(("failed appends", ReportFormat.count(e.failedAppends)))
        html += "<div>\n" + keyValueTable("Requests", requests) + keyValueTable("Errors", errors) + "</div>\n"
        html += "</div>\n"

        html += edgeTable(run.edges)
        html += "<h4>p99 latency per second</h4>\n"
        html += p99Chart(run, index: index).render(label: "p99 per second")
        return html + "</article>\n"
    }

    private static func keyValueTable(_ caption: String, _ rows: [(String, String)]) -> String {
        var html = "<table class=\"kv\">\n<caption>\(escape(caption))</caption>\n"
        for (key, value) in rows {
            html += "<tr><th>\(escape(key))</th><td>\(escape(value))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    private static func edgeTable(_ edges: [EdgeSummary]) -> String {
        guard !edges.isEmpty else { return "<p class=\"muted\">No edge metrics.</p>\n" }
        let outcomes = Set(edges.flatMap(\.outcomes.keys)).sorted()
        var html = "<table class=\"figures\">\n<caption>Edges</caption>\n<thead><tr><th>edge</th><th>hit rate</th>"
        html += outcomes.map { "<th>\(escape($0))</th>" }.joined()
        html += "<th>upstream</th></tr></thead>\n<tbody>\n"
        for edge in edges {
            html += "<tr><th>\(escape(edge.url))</th><td>\(escape(ReportFormat.percent(edge.hitRate)))</td>"
            html += outcomes.map { "<td>\(escape(edge.outcomes[$0].map(ReportFormat.count) ?? "0"))</td>" }.joined()
            let upstream = edge.upstreamRequests.sorted { $0.key < $1.key }
                .map { "\($0.key) \(ReportFormat.count($0.value))" }.joined(separator: ", ")
            html += "<td>\(escape(upstream.isEmpty ? "none" : upstream))</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    // MARK: Charts

    private static func latencyChart(_ runs: [LoadTestResult]) -> SVGChart {
        let withData = runs.indices.filter { !runs[$0].latency.cdf.isEmpty }
        let finiteTail = withData.flatMap { runs[$0].latency.cdf }.map(\.percentile).filter { $0 < 100 }
        let decades = min(max(ceil(finiteTail.map(percentileDecades).max() ?? 0), 4), maxDecades)
        let yMax = withData.flatMap { runs[$0].latency.cdf }.map(\.millis).max() ?? 0
        let yAxis = NiceAxis(upTo: yMax)

        var chart = SVGChart(plotHeight: 340, xDomain: 0...decades, yDomain: 0...yAxis.top)
        let xTicks = (0...Int(decades)).map { decade in
            let percentile = 100 - 100 / pow(10, Double(decade))
            return Tick(value: Double(decade), label: String(format: "%.\(max(decade - 2, 0))f%%", percentile))
        }
        chart.drawAxes(xTicks: xTicks, yTicks: yAxis.ticks, xTitle: "percentile", yTitle: "ms")
        for index in withData {
            let points = runs[index].latency.cdf.map { (percentileDecades($0.percentile), $0.millis) }
            chart.drawLine(points, color: color(index))
        }
        if withData.isEmpty { chart.drawMessage("no latency samples") }
        for index in runs.indices {
            chart.addLegend(.line(color: color(index), dashed: false), runName(runs, index))
        }
        return chart
    }

    private static func throughputChart(_ runs: [LoadTestResult]) -> SVGChart {
        let timeline = runs.flatMap(\.timeline)
        let xAxis = NiceAxis(upTo: timeline.map(\.second).max() ?? 0)
        let yAxis = NiceAxis(upTo: timeline.map(\.messagesPerSecond).max() ?? 0)
        let originRates = timeline.compactMap(\.originRequestsPerSecond)
        let originAxis = originRates.isEmpty ? nil : NiceAxis(upTo: originRates.max() ?? 0)

        var chart = SVGChart(
            plotHeight: 300, xDomain: 0...xAxis.top, yDomain: 0...yAxis.top,
            rightDomain: originAxis.map { 0...$0.top })
        chart.drawAxes(xTicks: xAxis.ticks, yTicks: yAxis.ticks, xTitle: "seconds", yTitle: "messages/s")
        if let originAxis {
            chart.drawRightAxis(ticks: originAxis.ticks, title: "origin requests/s")
        }
        for (index, run) in runs.enumerated() {
            chart.drawLine(run.timeline.map { ($0.second, $0.messagesPerSecond) }, color: color(index))
            let origin = run.timeline.compactMap { p in p.originRequestsPerSecond.map { (p.second, $0) } }
            chart.drawLine(origin, color: color(index), dashed: true, rightAxis: true)
        }
        if timeline.isEmpty { chart.drawMessage("no timeline") }
        for index in runs.indices {
            chart.addLegend(.line(color: color(index), dashed: false), runName(runs, index))
        }
        chart.addLegend(.line(color: "#555", dashed: false), "solid: messages/s received by readers (left axis)")
        if originAxis != nil {
            chart.addLegend(.line(color: "#555", dashed: true), "dashed: requests/s answered by the origin (right axis)")
        }
        return chart
    }

    private static func requestChart(_ runs: [LoadTestResult]) -> SVGChart {
        let readerColor = "#4c6ef5"
        let originColor = "#f08c00"
        let readers = runs.map { Double($0.readerRequestTotal) }
        let origins = runs.map { $0.originReadRequests.map(Double.init) }
        let yAxis = NiceAxis(upTo: (readers + origins.compactMap { $0 }).max() ?? 0)

        var chart = SVGChart(plotHeight: 280, xDomain: 0...Double(max(runs.count, 1)), yDomain: 0...yAxis.top)
        chart.drawAxes(xTicks: [], yTicks: yAxis.ticks, xTitle: nil, yTitle: "requests")
        for index in runs.indices {
            let group = Double(index)
            chart.drawBar(from: group + 0.18, to: group + 0.48, value: readers[index], color: readerColor)
            chart.drawBar(from: group + 0.52, to: group + 0.82, value: origins[index], color: originColor)
            chart.drawCategoryLabel(
                at: group + 0.5, lines: ["#\(index + 1)", ReportFormat.shortTarget(runs[index].target, maxLength: 32)],
                color: color(index))
        }
        chart.addLegend(.box(color: readerColor), "requests sent by readers (all classes)")
        chart.addLegend(.box(color: originColor), "read requests answered by the origin (read, long_poll, sse)")
        return chart
    }

    private static func p99Chart(_ run: LoadTestResult, index: Int) -> SVGChart {
        let xAxis = NiceAxis(upTo: run.timeline.map(\.second).max() ?? 0)
        let yAxis = NiceAxis(upTo: run.timeline.map(\.p99Millis).max() ?? 0, tickCount: 3)
        var chart = SVGChart(plotHeight: 120, xDomain: 0...xAxis.top, yDomain: 0...yAxis.top)
        chart.drawAxes(xTicks: xAxis.ticks, yTicks: yAxis.ticks, xTitle: "seconds", yTitle: "p99 ms")
        chart.drawLine(run.timeline.map { ($0.second, $0.p99Millis) }, color: color(index))
        if run.timeline.isEmpty { chart.drawMessage("no timeline") }
        return chart
    }

    private static let stylesheet = """

        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2125;
               background: #f6f7f9; margin: 0; padding: 24px; }
        header, section { max-width: 1040px; margin: 0 auto; }
        header, section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 16px 24px;
                          margin-bottom: 20px; }
        h1 { font-size: 22px; margin: 0 0 6px; }
        h1 .kind { font-size: 13px; font-weight: 600; background: #e7ecf2; border-radius: 4px; padding: 2px 8px;
                   vertical-align: middle; }
        h2 { font-size: 17px; margin: 0 0 12px; }
        h3 { font-size: 15px; margin: 8px 0; overflow-wrap: anywhere; }
        h4 { font-size: 13px; margin: 12px 0 4px; color: #495057; }
        .meta { margin: 2px 0; color: #495057; }
        .muted { color: #868e96; font-weight: normal; }
        .targets { list-style: none; padding: 0; margin: 10px 0; }
        .targets li { margin: 2px 0; overflow-wrap: anywhere; }
        .swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; }
        .badge.clean { display: inline-block; background: #2b8a3e; color: #fff; font-weight: 600; border-radius: 14px;
                       padding: 4px 14px; margin: 6px 0 0; }
        .banner { background: #c92a2a; color: #fff; border-radius: 6px; padding: 12px 18px; margin-top: 10px;
                  font-size: 16px; }
        .banner strong { font-size: 20px; letter-spacing: 0.04em; }
        .banner ul { margin: 6px 0 0; padding-left: 20px; }
        .banner.small { font-size: 14px; padding: 6px 12px; font-weight: 600; }
        table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0 12px; }
        caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
        th, td { padding: 4px 10px; border-bottom: 1px solid #e9ecef; }
        th { text-align: left; font-weight: 600; }
        td { text-align: right; white-space: nowrap; }
        table.figures thead th { text-align: right; vertical-align: bottom; border-bottom: 2px solid #ced4da; }
        table.figures tbody th { font-weight: normal; color: #343a40; }
        table.figures td.ratio, table.figures th.ratio { background: #f1f3f5; }
        table.kv th { font-weight: normal; color: #495057; }
        td.bad { background: #ffe3e3; color: #c92a2a; font-weight: 700; }
        td.good { color: #2b8a3e; font-weight: 600; }
        .columns { display: flex; flex-wrap: wrap; gap: 32px; }
        article.run { border-top: 1px solid #dde1e6; padding-top: 8px; margin-top: 8px; }
        article.run:first-of-type { border-top: none; margin-top: 0; }
        svg { display: block; width: 100%; height: auto; }
        svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #343a40; }
        svg .grid { stroke: #e9ecef; stroke-width: 1; }
        svg .axis { stroke: #868e96; stroke-width: 1; }
        svg .title { font-weight: 600; fill: #495057; }
        svg .value { font-size: 11px; }
        svg .message { font-size: 15px; fill: #868e96; }

        """
}

/// A labelled position on an axis, in data units.
private struct Tick {
    var value: Double
    var label: String
}

/// Round tick steps (1, 2 or 5 × 10ⁿ) from zero up to a top at or above the largest value.
private struct NiceAxis {
    let top: Double
    let ticks: [Tick]

    init(upTo maxValue: Double, tickCount: Int = 5) {
        let target = maxValue.isFinite && maxValue > 0 ? maxValue : 1
        let rough = target / Double(max(tickCount, 1))
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        let steps = Int((target / step).rounded(.up))
        top = Double(steps) * step
        ticks = (0...steps).map { Tick(value: Double($0) * step, label: Self.label(Double($0) * step)) }
    }

    /// Compact labels: "250", "1.5", "12k", "2.5M".
    static func label(_ v: Double) -> String {
        func trimmed(_ x: Double, _ decimals: Int) -> String {
            var s = String(format: "%.\(decimals)f", x)
            if s.contains(".") {
                while s.hasSuffix("0") { s.removeLast() }
                if s.hasSuffix(".") { s.removeLast() }
            }
            return s
        }
        let a = abs(v)
        if a >= 1_000_000 { return trimmed(v / 1_000_000, 1) + "M" }
        if a >= 10_000 { return trimmed(v / 1_000, 1) + "k" }
        return trimmed(v, 3)
    }
}

/// Maps a data interval onto a pixel interval, clamped to it. A degenerate domain maps
/// everything to the start of the range rather than dividing by zero.
private struct LinearScale {
    var domain: ClosedRange<Double>
    var from: Double
    var to: Double

    func callAsFunction(_ value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        guard span > 0, span.isFinite, value.isFinite else { return from }
        let t = min(max((value - domain.lowerBound) / span, 0), 1)
        return from + t * (to - from)
    }
}

/// An SVG chart under construction: a plot area with x and y scales (and an optional right-hand
/// y scale), drawn into element by element, with a legend below the plot.
private struct SVGChart {
    enum LegendMark {
        case line(color: String, dashed: Bool)
        case box(color: String)
    }

    static let width = 1000.0
    static let left = 72.0
    static let right = 80.0
    static let top = 16.0
    static let bottom = 64.0
    static let legendRow = 20.0

    let plotTop = SVGChart.top
    let plotBottom: Double
    let plotLeft = SVGChart.left
    let plotRight = SVGChart.width - SVGChart.right
    let x: LinearScale
    let y: LinearScale
    let rightY: LinearScale?
    private var elements: [String] = []
    private var legend: [(LegendMark, String)] = []

    init(plotHeight: Double, xDomain: ClosedRange<Double>, yDomain: ClosedRange<Double>, rightDomain: ClosedRange<Double>? = nil) {
        let bottom = SVGChart.top + plotHeight
        plotBottom = bottom
        x = LinearScale(domain: xDomain, from: SVGChart.left, to: SVGChart.width - SVGChart.right)
        y = LinearScale(domain: yDomain, from: bottom, to: SVGChart.top)
        rightY = rightDomain.map { LinearScale(domain: $0, from: bottom, to: SVGChart.top) }
    }

    /// Every coordinate goes through here, so no NaN or infinity can reach the SVG.
    static func num(_ v: Double) -> String {
        v.isFinite ? String(format: "%.1f", v) : "0"
    }

    private static func esc(_ s: String) -> String { HTMLReport.escape(s) }

    private mutating func text(_ s: String, x: Double, y: Double, anchor: String = "middle", cls: String? = nil,
                               extra: String = "") {
        let c = cls.map { " class=\"\($0)\"" } ?? ""
        elements.append(
            "<text x=\"\(Self.num(x))\" y=\"\(Self.num(y))\" text-anchor=\"\(anchor)\"\(c)\(extra)>\(Self.esc(s))</text>")
    }

    private mutating func segment(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cls: String) {
        elements.append(
            "<line x1=\"\(Self.num(x1))\" y1=\"\(Self.num(y1))\" x2=\"\(Self.num(x2))\" y2=\"\(Self.num(y2))\" class=\"\(cls)\"/>")
    }

    /// Grid lines, the left and bottom axes, tick labels and axis titles.
    mutating func drawAxes(xTicks: [Tick], yTicks: [Tick], xTitle: String?, yTitle: String) {
        for tick in yTicks {
            let py = y(tick.value)
            segment(plotLeft, py, plotRight, py, cls: "grid")
            text(tick.label, x: plotLeft - 8, y: py + 4, anchor: "end")
        }
        for tick in xTicks {
            let px = x(tick.value)
            segment(px, plotTop, px, plotBottom, cls: "grid")
            text(tick.label, x: px, y: plotBottom + 18)
        }
        segment(plotLeft, plotBottom, plotRight, plotBottom, cls: "axis")
        segment(plotLeft, plotTop, plotLeft, plotBottom, cls: "axis")
        if let xTitle {
            text(xTitle, x: (plotLeft + plotRight) / 2, y: plotBottom + 40, cls: "title")
        }
        let midY = (plotTop + plotBottom) / 2
        text(yTitle, x: 18, y: midY, cls: "title", extra: " transform=\"rotate(-90 18 \(Self.num(midY)))\"")
    }

    /// The right-hand axis for series drawn with `rightAxis: true`.
    mutating func drawRightAxis(ticks: [Tick], title: String) {
        guard let rightY else { return }
        segment(plotRight, plotTop, plotRight, plotBottom, cls: "axis")
        for tick in ticks {
            let py = rightY(tick.value)
            segment(plotRight, py, plotRight + 5, py, cls: "axis")
            text(tick.label, x: plotRight + 8, y: py + 4, anchor: "start")
        }
        let tx = SVGChart.width - 14
        let midY = (plotTop + plotBottom) / 2
        text(title, x: tx, y: midY, cls: "title", extra: " transform=\"rotate(90 \(Self.num(tx)) \(Self.num(midY)))\"")
    }

    /// A polyline through data points; nothing for an empty series.
    mutating func drawLine(_ points: [(Double, Double)], color: String, dashed: Bool = false, rightAxis: Bool = false) {
        guard !points.isEmpty else { return }
        let yScale = rightAxis ? (rightY ?? y) : y
        let coordinates = points.map { "\(Self.num(x($0.0))),\(Self.num(yScale($0.1)))" }.joined(separator: " ")
        let dash = dashed ? " stroke-dasharray=\"6 4\"" : ""
        elements.append(
            "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) stroke-linejoin=\"round\"/>")
    }

    /// A bar between two x positions with its value printed above it, or "n/a" without a value.
    mutating func drawBar(from x0: Double, to x1: Double, value: Double?, color: String) {
        let left = x(x0)
        let right = x(x1)
        let center = (left + right) / 2
        guard let value, value.isFinite else {
            text("n/a", x: center, y: plotBottom - 6, cls: "value")
            return
        }
        let topY = y(value)
        elements.append(
            "<rect x=\"\(Self.num(left))\" y=\"\(Self.num(topY))\" width=\"\(Self.num(max(right - left, 0)))\" "
                + "height=\"\(Self.num(max(plotBottom - topY, 0)))\" fill=\"\(color)\"/>")
        text(ReportFormat.number(value, decimals: 0), x: center, y: topY - 5, cls: "value")
    }

    /// Lines of text under the x axis, centred on a data position.
    mutating func drawCategoryLabel(at position: Double, lines: [String], color: String) {
        for (i, line) in lines.enumerated() {
            text(line, x: x(position), y: plotBottom + 18 + Double(i) * 16, cls: i == 0 ? "title" : nil,
                 extra: i == 0 ? " style=\"fill:\(color)\"" : "")
        }
    }

    /// A note in the middle of the plot, for charts without data.
    mutating func drawMessage(_ message: String) {
        text(message, x: (plotLeft + plotRight) / 2, y: (plotTop + plotBottom) / 2, cls: "message")
    }

    mutating func addLegend(_ mark: LegendMark, _ label: String) {
        legend.append((mark, label))
    }

    func render(label: String) -> String {
        let height = plotBottom + SVGChart.bottom + Double(legend.count) * SVGChart.legendRow
        var svg = "<svg viewBox=\"0 0 \(Self.num(SVGChart.width)) \(Self.num(height))\" role=\"img\" aria-label=\"\(Self.esc(label))\">\n"
        svg += elements.joined(separator: "\n")
        for (i, (mark, text)) in legend.enumerated() {
            let rowY = plotBottom + SVGChart.bottom + Double(i) * SVGChart.legendRow + 10
            switch mark {
            case .line(let color, let dashed):
                let dash = dashed ? " stroke-dasharray=\"6 4\"" : ""
                svg += "\n<line x1=\"\(Self.num(plotLeft))\" y1=\"\(Self.num(rowY))\" x2=\"\(Self.num(plotLeft + 28))\" "
                    + "y2=\"\(Self.num(rowY))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash)/>"
            case .box(let color):
                svg += "\n<rect x=\"\(Self.num(plotLeft + 8))\" y=\"\(Self.num(rowY - 6))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            }
            svg += "\n<text x=\"\(Self.num(plotLeft + 38))\" y=\"\(Self.num(rowY + 4))\">\(Self.esc(text))</text>"
        }
        return svg + "\n</svg>\n"
    }
}
