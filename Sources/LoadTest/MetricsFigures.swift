/// The figures the report takes from origin and edge metrics. Call these on a
/// ``MetricsSnapshot/delta(since:)`` of the scrapes around the run, not on a single scrape, or
/// they count everything since the server started.
extension MetricsSnapshot {
    /// Origin operations that answer a reader: what collapsing at the edge is meant to save.
    public static let originReadOperations = ["read", "long_poll", "sse"]

    /// Requests the origin answered, by `operation` label of `ds_origin_requests_total` (all
    /// statuses together). The `metrics` operation is left out: those are the load tester's own
    /// scrapes, not load.
    public func originRequestsByOperation() -> [String: Int] {
        var counts: [String: Int] = [:]
        for (operation, value) in sum("ds_origin_requests_total", groupedBy: "operation") where operation != "metrics" {
            counts[operation] = Self.count(value)
        }
        return counts
    }

    /// Read requests (``originReadOperations``) the origin answered.
    public func originReadRequests() -> Int {
        let byOperation = originRequestsByOperation()
        // Summed as Doubles: counts clamped to Int.max by `count(_:)` would trap on `+`.
        return Self.count(Self.originReadOperations.reduce(0.0) { $0 + Double(byOperation[$1] ?? 0) })
    }

    /// One edge's figures for the report. Outcomes leave out class `other` (metrics scrapes,
    /// the dashboard), which the load did not send; the hit rate counts HIT, STALE, REVALIDATED
    /// and COLLAPSED as answered without an upstream request of their own (the edge's own
    /// definition), over every outcome but PASS (which
    /// was never a candidate for the cache). Nil hit rate when there was no such read.
    public func edgeSummary(url: String) -> EdgeSummary {
        let clientRequests = filtered { $0.labels["class"] != "other" }
        let outcomes = clientRequests.sum("ds_edge_requests_total", groupedBy: "cache").mapValues(Self.count)
        let upstream = sum("ds_edge_upstream_requests_total", groupedBy: "class").mapValues(Self.count)

        // From the rounded counts, so the rate always agrees with the outcomes printed next to it;
        // summed as Doubles so absurd scraped values cannot overflow.
        let served = ["HIT", "STALE", "REVALIDATED", "COLLAPSED"].reduce(0.0) { $0 + Double(outcomes[$1] ?? 0) }
        let reads = outcomes.reduce(0.0) { $0 + ($1.key == "PASS" ? 0 : Double($1.value)) }
        let hitRate = reads > 0 ? served / reads : nil
        return EdgeSummary(url: url, outcomes: outcomes, upstreamRequests: upstream, hitRate: hitRate)
    }

    /// Reader read requests per origin read request: how many readers each origin read served.
    /// Nil when the origin saw no reads, where any ratio would be meaningless.
    public static func collapseRatio(readerReads: Int, originReads: Int) -> Double? {
        guard originReads > 0 else { return nil }
        return Double(readerReads) / Double(originReads)
    }

    /// A counter value as a count. `Int(_:)` traps on NaN, infinities and out-of-range values,
    /// and scraped text may hold any of them, so those are mapped instead: NaN to 0, the rest to
    /// the nearest representable end.
    static func count(_ value: Double) -> Int {
        guard !value.isNaN else { return 0 }
        let rounded = value.rounded()
        // 2^63 is exactly representable and is the first Double past Int.max.
        if rounded >= 9_223_372_036_854_775_808.0 { return .max }
        if rounded < -9_223_372_036_854_775_808.0 { return .min }
        return Int(rounded)
    }
}
