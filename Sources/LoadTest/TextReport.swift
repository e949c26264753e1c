import Foundation

/// Renders load-test results as fixed-width text for a terminal.
public enum TextReport {
    /// One run as a readable table: scenario, latency, delivery, throughput, requests, edges and
    /// errors. Delivery problems are announced near the top and again at the bottom.
    public static func render(_ result: LoadTestResult) -> String {
        var out = TextBlock()
        let s = result.scenario
        out.line("=== load test: \(s.name) (\(s.kind)) ===")
        out.info("scenario", ReportFormat.scenarioShape(s))
        out.info("target", result.target)
        out.info("origin", result.origin)
        out.info("started", "\(result.startedAt) (measured \(ReportFormat.seconds(result.elapsedSeconds)))")
        out.blank()
        out.line(deliveryVerdict(result.delivery, clean: result.deliveryIsClean))

        out.blank()
        let l = result.latency
        out.line("latency (\(result.latencyKind), \(ReportFormat.count(l.count)) samples, ms)")
        let latencyColumns = ["p50", "p90", "p99", "p99.9", "max", "mean"]
        let latencyValues = [l.p50, l.p90, l.p99, l.p999, l.max, l.mean].map(ReportFormat.millis)
        let width = max(10, (latencyValues.map(\.count).max() ?? 0) + 2)
        out.line("  " + latencyColumns.map { ReportFormat.padLeft($0, width) }.joined())
        out.line("  " + latencyValues.map { ReportFormat.padLeft($0, width) }.joined())

        out.blank()
        let d = result.delivery
        out.line("delivery")
        out.field("readers", ReportFormat.count(d.readers), indent: true)
        out.field("appended", ReportFormat.count(d.appended), indent: true)
        out.field("expected", ReportFormat.count(d.expected), indent: true)
        out.field("received", ReportFormat.count(d.received), indent: true)
        out.field("lost", ReportFormat.count(d.lost), indent: true)
        out.field("duplicated", ReportFormat.count(d.duplicated), indent: true)
        out.field("out of order", ReportFormat.count(d.outOfOrder), indent: true)
        out.field("corrupt", ReportFormat.count(d.corrupt), indent: true)
        out.field("readers with problems", ReportFormat.count(d.readersWithProblems), indent: true)
        out.field("before ack", ReportFormat.count(d.beforeAck), indent: true)

        out.blank()
        let t = result.throughput
        out.line("throughput")
        out.field("messages/s", ReportFormat.number(t.messagesPerSecond, decimals: 1), indent: true)
        out.field("bytes/s", ReportFormat.bytesPerSecond(t.bytesPerSecond), indent: true)
        out.field("appends/s", ReportFormat.number(t.appendsPerSecond, decimals: 1), indent: true)

        out.blank()
        out.line("reader requests")
        out.counts(result.readerRequests)

        if let origin = result.originRequests {
            out.blank()
            out.line("origin requests")
            out.counts(origin)
        }

        out.blank()
        out.field("collapse ratio", ReportFormat.collapse(result.collapseRatio))

        for edge in result.edges {
            out.blank()
            out.line("edge \(edge.url)")
            out.field("hit rate", ReportFormat.percent(edge.hitRate), indent: true)
            out.counts(edge.outcomes)
            if !edge.upstreamRequests.isEmpty {
                let upstream = edge.upstreamRequests.sorted { $0.key < $1.key }
                    .map { "\($0.key) \(ReportFormat.count($0.value))" }.joined(separator: ", ")
                out.info("upstream", upstream, indent: true)
            }
        }

        out.blank()
        let e = result.errors
        out.line("errors (\(ReportFormat.count(e.total)) total)")
        out.field("connection errors", ReportFormat.count(e.connectionErrors), indent: true)
        for (status, count) in e.statuses.sorted(by: { $0.key < $1.key }) {
            out.field("status \(status)", ReportFormat.count(count), indent: true)
        }
        out.field("failed appends", ReportFormat.count(e.failedAppends), indent: true)

        if !result.deliveryIsClean {
            out.blank()
            out.line(deliveryVerdict(result.delivery, clean: false))
        }
        return out.text
    }

    /// Runs of one scenario side by side, one column per run, the first being the baseline, plus
    /// a "vs baseline" ratio column per other run. Runs with delivery problems are flagged.
    public static func renderComparison(_ runs: [LoadTestResult]) -> String {
        var out = TextBlock()
        guard let baseline = runs.first else {
            out.line("comparison: no runs")
            return out.text
        }
        out.line("=== comparison: \(baseline.scenario.name) (\(baseline.scenario.kind)) ===")
        out.info("scenario", ReportFormat.scenarioShape(baseline.scenario))
        for (index, run) in runs.enumerated() {
            out.info("#\(index + 1)", run.target + (index == 0 ? " (baseline)" : ""))
        }
        out.blank()
        let problems = problemLines(runs)
        problems.forEach { out.line($0) }
        if problems.isEmpty {
            out.line("delivery: clean in all \(runs.count) runs (0 lost, 0 duplicated, 0 out of order)")
        }
        out.blank()

        let rows = ReportComparisonRow.rows(for: runs)
        let labelWidth = max(20, (rows.map(\.label.count).max() ?? 0) + 2)
        let runHeaders = runs.indices.map { $0 == 0 ? "#1 baseline" : "#\($0 + 1)" }
        let targetHeaders = runs.map { ReportFormat.shortTarget($0.target) }
        let cells = rows.map { row in row.values.map { row.format($0) } }
        let widths = runHeaders.map(\.count) + targetHeaders.map(\.count) + cells.flatMap { $0.map(\.count) }
        let runWidth = max(12, widths.max() ?? 0) + 2
        let ratioHeaders = runs.indices.dropFirst().map { "#\($0 + 1)/#1" }
        let ratioWidth = 10

        out.line(
            ReportFormat.padRight("", labelWidth)
                + runHeaders.map { ReportFormat.padLeft($0, runWidth) }.joined()
                + ratioHeaders.map { ReportFormat.padLeft($0, ratioWidth) }.joined())
        out.line(
            ReportFormat.padRight("", labelWidth)
                + targetHeaders.map { ReportFormat.padLeft($0, runWidth) }.joined()
                + ratioHeaders.map { _ in ReportFormat.padLeft("vs base", ratioWidth) }.joined())
        for (row, rowCells) in zip(rows, cells) {
            var line = ReportFormat.padRight(row.label, labelWidth)
            line += rowCells.map { ReportFormat.padLeft($0, runWidth) }.joined()
            if row.comparesToBaseline {
                line += row.ratios().map { ReportFormat.padLeft($0, ratioWidth) }.joined()
            }
            out.line(line)
        }

        if !problems.isEmpty {
            out.blank()
            problems.forEach { out.line($0) }
        }
        return out.text
    }

    private static func deliveryVerdict(_ delivery: DeliverySummary, clean: Bool) -> String {
        if clean {
            return "delivery: clean (0 lost, 0 duplicated, 0 out of order)"
        }
        return "!!! DELIVERY PROBLEMS: \(ReportFormat.deliveryProblems(delivery)) !!!"
    }

    private static func problemLines(_ runs: [LoadTestResult]) -> [String] {
        runs.enumerated().filter { !$0.element.deliveryIsClean }.map { index, run in
            "!!! DELIVERY PROBLEMS in #\(index + 1) (\(run.target)): \(ReportFormat.deliveryProblems(run.delivery)) !!!"
        }
    }
}

/// Accumulates the lines of a text report.
private struct TextBlock {
    private(set) var text = ""
    private let labelWidth = 24
    private let valueWidth = 16

    mutating func line(_ s: String) { text += s + "\n" }

    mutating func blank() { text += "\n" }

    /// `label   value` with the value right-aligned in a fixed column, so figures line up down the page.
    mutating func field(_ label: String, _ value: String, indent: Bool = false) {
        line(labelColumn(label, indent: indent) + ReportFormat.padLeft(value, valueWidth))
    }

    /// `label   text` with the text left-aligned, for descriptions and URLs.
    mutating func info(_ label: String, _ text: String, indent: Bool = false) {
        line(labelColumn(label, indent: indent) + text)
    }

    private func labelColumn(_ label: String, indent: Bool) -> String {
        ReportFormat.padRight((indent ? "  " : "") + label, labelWidth)
    }

    /// Counts by key, sorted by key; "(none)" when empty.
    mutating func counts(_ counts: [String: Int]) {
        if counts.isEmpty {
            line("  (none)")
            return
        }
        for (key, value) in counts.sorted(by: { $0.key < $1.key }) {
            field(key, ReportFormat.count(value), indent: true)
        }
    }
}

/// One figure compared across runs; shared by the text and the HTML comparison tables.
struct ReportComparisonRow {
    enum Unit {
        case millis, rate, count, collapse, percent
    }

    var label: String
    /// One value per run; nil when the run does not have the figure.
    var values: [Double?]
    var unit: Unit
    /// Whether a run / baseline ratio means something for this figure.
    var comparesToBaseline: Bool

    func format(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        switch unit {
        case .millis: return ReportFormat.millis(value)
        case .rate: return ReportFormat.number(value, decimals: 1)
        case .count: return ReportFormat.number(value, decimals: 0)
        case .collapse: return ReportFormat.collapse(value)
        case .percent: return ReportFormat.percent(value)
        }
    }

    /// `value / baseline` for every run after the first.
    func ratios() -> [String] {
        guard let baseline = values.first else { return [] }
        return values.dropFirst().map { ReportFormat.multiplier($0, baseline: baseline) }
    }

    static func rows(for runs: [LoadTestResult]) -> [ReportComparisonRow] {
        func row(_ label: String, _ unit: Unit, ratio: Bool, _ value: (LoadTestResult) -> Double?) -> ReportComparisonRow {
            ReportComparisonRow(label: label, values: runs.map(value), unit: unit, comparesToBaseline: ratio)
        }
        return [
            row("p50 ms", .millis, ratio: true) { $0.latency.p50 },
            row("p99 ms", .millis, ratio: true) { $0.latency.p99 },
            row("p99.9 ms", .millis, ratio: true) { $0.latency.p999 },
            row("max ms", .millis, ratio: true) { $0.latency.max },
            row("messages/s", .rate, ratio: true) { $0.throughput.messagesPerSecond },
            // A saturated origin holds appends back: the offered rate is then not what ran.
            row("appends/s", .rate, ratio: true) { $0.throughput.appendsPerSecond },
            row("before ack", .count, ratio: false) { Double($0.delivery.beforeAck) },
            row("origin requests", .count, ratio: true) { $0.originRequestTotal.map(Double.init) },
            row("origin read requests", .count, ratio: true) { $0.originReadRequests.map(Double.init) },
            row("collapse ratio", .collapse, ratio: false) { $0.collapseRatio },
            row("hit rate (first edge)", .percent, ratio: false) { $0.edges.first?.hitRate },
            row("lost", .count, ratio: false) { Double($0.delivery.lost) },
            row("duplicated", .count, ratio: false) { Double($0.delivery.duplicated) },
            row("errors", .count, ratio: false) { Double($0.errors.total) },
        ]
    }
}

extension LoadTestResult {
    /// All requests the origin answered, or nil without origin metrics.
    var originRequestTotal: Int? {
        originRequests.map { $0.values.reduce(0, +) }
    }

    /// Read requests (`read`, `long_poll`, `sse`) the origin answered, or nil without origin metrics.
    var originReadRequests: Int? {
        originRequests.map { ops in MetricsSnapshot.originReadOperations.reduce(0) { $0 + (ops[$1] ?? 0) } }
    }

    /// Every request the readers sent.
    var readerRequestTotal: Int {
        readerRequests.values.reduce(0, +)
    }
}

/// Number and text formatting shared by the reports. Never yields "nan" or "inf".
enum ReportFormat {
    static func count(_ n: Int) -> String {
        number(Double(n), decimals: 0)
    }

    /// Fixed decimals with thousands separators; "n/a" when not finite.
    static func number(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "n/a" }
        let digits = String(format: "%.\(decimals)f", Swift.abs(value))
        let parts = digits.split(separator: ".", maxSplits: 1)
        let integer = Array(parts[0])
        var grouped = ""
        for (i, digit) in integer.enumerated() {
            if i > 0 && (integer.count - i) % 3 == 0 { grouped += "," }
            grouped.append(digit)
        }
        if parts.count > 1 { grouped += "." + parts[1] }
        let isZero = digits.allSatisfy { $0 == "0" || $0 == "." }
        return (value < 0 && !isZero ? "-" : "") + grouped
    }

    static func millis(_ value: Double) -> String {
        number(value, decimals: 2)
    }

    static func seconds(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        let rounded = value.rounded()
        return (Swift.abs(value - rounded) < 0.05 ? number(rounded, decimals: 0) : number(value, decimals: 1)) + " s"
    }

    /// Decimal units: "256 B", "1.2 kB", "3.4 MB".
    static func bytes(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        let units = ["B", "kB", "MB", "GB", "TB"]
        var scaled = value
        var unit = 0
        while Swift.abs(scaled) >= 1000 && unit < units.count - 1 {
            scaled /= 1000
            unit += 1
        }
        return unit == 0 ? "\(number(scaled, decimals: 0)) B" : "\(number(scaled, decimals: 1)) \(units[unit])"
    }

    static func bytesPerSecond(_ value: Double) -> String {
        bytes(value) + "/s"
    }

    /// A collapse ratio such as "1,000.0×".
    static func collapse(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "n/a" }
        return number(value, decimals: 1) + "×"
    }

    /// `value / baseline` as "0.42×"; "n/a" when either is missing or the baseline is zero.
    static func multiplier(_ value: Double?, baseline: Double?) -> String {
        guard let value, let baseline, baseline != 0 else { return "n/a" }
        let ratio = value / baseline
        guard ratio.isFinite else { return "n/a" }
        // Two significant digits for small ratios, so 0.011× does not collapse to 0.01×.
        let magnitude = Swift.abs(ratio)
        let decimals = magnitude >= 0.1 || magnitude == 0 ? 2 : min(6, 1 - Int(floor(log10(magnitude))))
        return number(ratio, decimals: decimals) + "×"
    }

    /// A 0...1 fraction as "97.5%".
    static func percent(_ fraction: Double?) -> String {
        guard let fraction, fraction.isFinite else { return "n/a" }
        return number(fraction * 100, decimals: 1) + "%"
    }

    static func scenarioShape(_ s: ScenarioSummary) -> String {
        "\(count(s.streams)) streams × \(count(s.readersPerStream)) readers/stream, "
            + "\(count(s.writersPerStream)) writer\(s.writersPerStream == 1 ? "" : "s")/stream, "
            + "\(number(s.appendsPerSecond, decimals: 1)) appends/s/stream, "
            + "\(bytes(Double(s.messageBytes))) messages, \(seconds(s.durationSeconds))"
    }

    /// "3 lost, 1 duplicated, 0 out of order, 0 corrupt in 2 readers".
    static func deliveryProblems(_ d: DeliverySummary) -> String {
        "\(count(d.lost)) lost, \(count(d.duplicated)) duplicated, \(count(d.outOfOrder)) out of order, "
            + "\(count(d.corrupt)) corrupt in \(count(d.readersWithProblems)) reader\(d.readersWithProblems == 1 ? "" : "s")"
    }

    /// A target URL without its scheme, cut in the middle when long so host and path end stay visible.
    static func shortTarget(_ url: String, maxLength: Int = 28) -> String {
        var s = Substring(url)
        for scheme in ["http://", "https://"] where s.hasPrefix(scheme) {
            s = s.dropFirst(scheme.count)
        }
        if s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
        guard s.count > maxLength, maxLength > 4 else { return String(s) }
        let head = (maxLength - 1) * 2 / 3
        let tail = maxLength - 1 - head
        return s.prefix(head) + "…" + s.suffix(tail)
    }

    /// Right-aligns in `width` columns; an overlong value still gets one space so columns never touch.
    static func padLeft(_ s: String, _ width: Int) -> String {
        s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
    }

    static func padRight(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
