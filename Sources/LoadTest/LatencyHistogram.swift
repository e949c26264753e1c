import Histogram

/// Latencies in an HDR histogram (three significant digits, microsecond resolution, up to an
/// hour), summarised in milliseconds.
public struct LatencyHistogram: Sendable {
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    public init() {}

    public var count: Int { Int(histogram.totalCount) }

    /// Records one latency given in nanoseconds (clamped to the trackable range).
    public mutating func record(nanoseconds: UInt64) {
        let micros = max(1, min(nanoseconds / 1_000, histogram.highestTrackableValue))
        _ = histogram.record(micros)
    }

    public mutating func add(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
    }

    public mutating func reset() {
        histogram.reset()
    }

    /// The latency at `percentile` (0...100), in milliseconds; 0 when empty.
    public func millis(atPercentile percentile: Double) -> Double {
        guard histogram.totalCount > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(percentile)) / 1_000
    }

    public var summary: LatencySummary {
        guard histogram.totalCount > 0 else { return .empty }
        // Percentiles spaced the HDR way: dense towards the tail, where the interesting part is.
        let levels = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100.0]
        let cdf = levels.map { CDFPoint(percentile: $0, millis: millis(atPercentile: $0)) }
        return LatencySummary(
            count: count, p50: millis(atPercentile: 50), p90: millis(atPercentile: 90), p99: millis(atPercentile: 99),
            p999: millis(atPercentile: 99.9), max: Double(histogram.max) / 1_000, mean: histogram.mean / 1_000, cdf: cdf)
    }
}
