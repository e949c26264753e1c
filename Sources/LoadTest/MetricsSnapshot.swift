/// One scrape of a `/metrics` endpoint, indexed by series (name plus exact label set), so the
/// scrapes before and after a run can be diffed and summed.
///
/// A series that appears more than once in the input keeps its last value, which is what
/// Prometheus would keep had it accepted the scrape at all.
public struct MetricsSnapshot: Sendable, Equatable {
    /// Metric name → label set → value. Grouping by name first keeps every lookup, all of which
    /// start from a name, away from the other families.
    private var series: [String: [[String: String]: Double]]

    public init(_ samples: [MetricSample]) {
        var series: [String: [[String: String]: Double]] = [:]
        for sample in samples {
            series[sample.name, default: [:]][sample.labels] = sample.value
        }
        self.series = series
    }

    /// Parses a text exposition; see ``PrometheusText`` for what is skipped.
    public init(parsing text: String) {
        self.init(PrometheusText.parse(text))
    }

    /// Every series, sorted by name and then by label set, so output built from it is stable.
    public var samples: [MetricSample] {
        series.keys.sorted().flatMap { name in
            series[name, default: [:]]
                .map { MetricSample(name: name, labels: $0.key, value: $0.value) }
                .sorted { Self.sortKey($0.labels).lexicographicallyPrecedes(Self.sortKey($1.labels)) }
        }
    }

    /// True when the scrape held no samples at all (or every line was malformed).
    public var isEmpty: Bool { series.isEmpty }

    /// The value of the series with exactly these labels, or nil. A label set that is a subset of
    /// the series' does not match: use ``sum(_:where:)`` for that.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        series[name]?[labels]
    }

    /// The sum over the series named `name` whose labels include every pair in `labels`
    /// (others may carry more labels). 0 when none match.
    public func sum(_ name: String, where labels: [String: String] = [:]) -> Double {
        guard let family = series[name] else { return 0 }
        var total = 0.0
        for (seriesLabels, value) in family where Self.labels(seriesLabels, include: labels) {
            total += value
        }
        return total
    }

    /// The series named `name` summed per value of `label`. Series without that label are left
    /// out rather than filed under "", which no report would know how to show.
    public func sum(_ name: String, groupedBy label: String) -> [String: Double] {
        var groups: [String: Double] = [:]
        for (seriesLabels, value) in series[name] ?? [:] {
            guard let key = seriesLabels[label] else { continue }
            groups[key, default: 0] += value
        }
        return groups
    }

    /// The series for which `isIncluded` is true; composes with the sums when a filter is not a
    /// plain label match (such as "every class but `other`").
    public func filtered(_ isIncluded: (MetricSample) throws -> Bool) rethrows -> MetricsSnapshot {
        var kept: [String: [[String: String]: Double]] = [:]
        for (name, family) in series {
            for (labels, value) in family where try isIncluded(MetricSample(name: name, labels: labels, value: value)) {
                kept[name, default: [:]][labels] = value
            }
        }
        var snapshot = MetricsSnapshot([])
        snapshot.series = kept
        return snapshot
    }

    /// What happened between `earlier` and this snapshot, series by series: this value minus the
    /// earlier one. A series the earlier scrape lacked started from 0 (counters are created on
    /// first use). A series that went down belongs to a process that restarted in between, so
    /// its whole current value is what it counted since, and that is what it yields; growth
    /// before the restart is lost, as it is to Prometheus' own `increase()`. Series only in
    /// `earlier` are dropped.
    ///
    /// Meant for counters (histogram buckets, `_sum` and `_count` included). A gauge goes
    /// through the same arithmetic, which means nothing for it: read gauges from a snapshot, not
    /// from a delta.
    public func delta(since earlier: MetricsSnapshot) -> MetricsSnapshot {
        var changes: [String: [[String: String]: Double]] = [:]
        for (name, family) in series {
            let before = earlier.series[name] ?? [:]
            var familyChanges: [[String: String]: Double] = [:]
            for (labels, later) in family {
                let previous = before[labels] ?? 0
                familyChanges[labels] = later < previous ? later : later - previous
            }
            changes[name] = familyChanges
        }
        var snapshot = MetricsSnapshot([])
        snapshot.series = changes
        return snapshot
    }

    private static func labels(_ labels: [String: String], include required: [String: String]) -> Bool {
        required.allSatisfy { labels[$0.key] == $0.value }
    }

    /// A canonical spelling of a label set, for sorting only.
    private static func sortKey(_ labels: [String: String]) -> [String] {
        labels.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
    }
}
