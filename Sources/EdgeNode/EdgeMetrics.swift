import Foundation
import NIOConcurrencyHelpers
import Prometheus
import StreamAuth
import ServerSupport

/// How an edge answered a request (the `X-Cache` header).
public enum CacheOutcome: String, Sendable, CaseIterable {
    /// Served from the cache, fresh.
    case hit = "HIT"
    /// Fetched from upstream by this request.
    case miss = "MISS"
    /// Served from the cache past its freshness (revalidating, or the upstream failing).
    case stale = "STALE"
    /// Served from the cache after the upstream confirmed it with 304.
    case revalidated = "REVALIDATED"
    /// Answered by an upstream request another client started.
    case collapsed = "COLLAPSED"
    /// Forwarded without caching (writes, HEAD, SSE, `offset=now`, uncacheable answers, the
    /// protocol's control paths (`__ds/…`), and route requests or answers that
    /// `RouteCachePolicy` keeps out of the cache).
    case pass = "PASS"
}

/// The kinds of request the edge tells apart in its metrics.
public enum RequestClass: String, Sendable, CaseIterable {
    case catchUp = "catch_up"
    case longPoll = "long_poll"
    case sse
    case write
    case head
    /// Everything else under the stream prefix or outside it that is no route: requests the edge
    /// does not decode as a stream operation, and the protocol's control paths (`__ds/…`), all
    /// PASS but for the origin's key set, which may be a route-cache HIT or MISS.
    case other
    /// A request for a `[[route]]`, passed to that route's upstream (HIT and MISS: the route
    /// cache, `RouteCache`).
    case route
}

/// The edge's counters, gauges and histogram, at `/metrics` (Prometheus text) and
/// `/__edge/stats` (JSON, with a history of the last hour by the second and the last day by the
/// minute, and the busiest streams). Every Prometheus name starts with `ds_edge_`.
public final class EdgeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// By `EdgeCounts.requestIndex`: a flat array, not nested dictionaries, as every request
    /// bumps one (hashing two keys per request showed in a cache hit's profile).
    private let requests: [Counter]
    /// By `RequestClass.ordinal`.
    private let upstreamRequests: [Counter]
    let collapsedWaiters: Counter
    let bytesFromCache: Counter
    let bytesFromUpstream: Counter
    let bytesReceived: Counter
    let upstreamErrors: Counter
    /// Failures of `[[route]]` upstreams, apart from `upstreamErrors`: an application server
    /// being down says nothing about the origin.
    let routeUpstreamErrors: Counter
    /// With credentials = verify: requests refused by the edge's own check, by reason.
    let authRefusals: AuthRefusalCounters
    let routeCacheBytes: Gauge
    let routeCacheEntries: Gauge
    let openConnections: Gauge
    let openSSE: Gauge
    let openLongPolls: Gauge
    let upstreamSSESubscriptions: Gauge
    let cacheBytes: Gauge
    let cacheEntries: Gauge
    let cacheEvictions: Counter
    let upstreamLatency: ValueHistogram
    let connectionCounters: ConnectionCounters
    /// Plain counts for the JSON view, the history and the top streams (Prometheus counters
    /// are write-only).
    private let state = NIOLockedValueBox(State())

    /// How many streams the top-streams sketch tracks (the page shows the first 20).
    static let trackedStreams = 200

    /// What one busy stream saw, counted since the sketch took it in.
    struct StreamTally: Sendable {
        var servedFromCache = 0
        var bytes = 0
    }

    private struct State {
        var counts = EdgeCounts()
        /// SSE clients and waiting long-polls per stream: exact, and bounded by the connections.
        var liveReaders = LiveReaders()
        var streams = HeavyHitters<String, StreamTally>(capacity: EdgeMetrics.trackedStreams) { StreamTally() }
        var history = SampleHistory<EdgeSample>()
        var lastSampled = EdgeCounts()
        /// Evictions already added to the Prometheus counter (the cache counts them itself).
        var evictionsReported = 0
        var startedAt: Int64 = 0
    }

    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "edge", metricName: metric, unitName: unit, helpText: help)
        }
        var requests: [Counter] = []
        var upstream: [Counter] = []
        // In ordinal order (`EdgeCounts.classes` and `.outcomes` are the cases in order).
        for kind in EdgeCounts.classes {
            for outcome in EdgeCounts.outcomes {
                assert(requests.count == EdgeCounts.requestIndex(kind, outcome))
                requests.append(registry.makeCounter(
                    descriptor: name("requests", "total", "Client requests by class and cache outcome"),
                    labels: [("class", kind.rawValue), ("cache", outcome.rawValue)]))
            }
            assert(upstream.count == kind.ordinal)
            upstream.append(registry.makeCounter(
                descriptor: name("upstream_requests", "total", "Requests sent upstream, by class"), labels: [("class", kind.rawValue)]))
        }
        self.requests = requests
        self.upstreamRequests = upstream
        collapsedWaiters = registry.makeCounter(descriptor: name("collapsed_waiters", "total", "Client requests answered by another client's upstream request"))
        bytesFromCache = registry.makeCounter(descriptor: name("cache_served_bytes", "total", "Stream body bytes served from the cache"))
        bytesFromUpstream = registry.makeCounter(descriptor: name("upstream_served_bytes", "total", "Stream body bytes served from upstream answers"))
        bytesReceived = registry.makeCounter(
            descriptor: name("upstream_received_bytes", "total", "Stream body bytes received from the upstream"))
        upstreamErrors = registry.makeCounter(descriptor: name("upstream_errors", "total", "Upstream requests that failed (connect, timeout, closed)"))
        routeUpstreamErrors = registry.makeCounter(
            descriptor: name("route_upstream_errors", "total", "Requests to [[route]] upstreams that failed (connect, timeout, closed, too large)"))
        authRefusals = AuthRefusalCounters(registry: registry, subsystem: "edge")
        routeCacheBytes = registry.makeGauge(descriptor: name("route_cache_bytes", "", "Bytes held by the cache of [[route]] answers"))
        routeCacheEntries = registry.makeGauge(descriptor: name("route_cache_entries", "", "Entries in the cache of [[route]] answers"))
        openConnections = registry.makeGauge(descriptor: name("open_connections", "", "Open client connections"))
        openSSE = registry.makeGauge(descriptor: name("open_sse_connections", "", "Client SSE responses in progress"))
        openLongPolls = registry.makeGauge(descriptor: name("open_long_polls", "", "Client long-polls waiting for an upstream answer"))
        upstreamSSESubscriptions = registry.makeGauge(
            descriptor: name("upstream_sse_subscriptions", "", "Upstream SSE subscriptions, each feeding every SSE client of its stream"))
        cacheBytes = registry.makeGauge(descriptor: name("cache_bytes", "", "Bytes held by the cache, headers included"))
        cacheEntries = registry.makeGauge(descriptor: name("cache_entries", "", "Entries in the cache"))
        cacheEvictions = registry.makeCounter(descriptor: name("cache_evictions", "total", "Entries evicted to stay within the budget"))
        upstreamLatency = registry.makeValueHistogram(
            descriptor: name("upstream_latency", "seconds", "Time to a complete upstream answer"),
            buckets: EdgeCounts.latencyBounds)
        connectionCounters = ConnectionCounters(registry: registry, subsystem: "edge")
    }

    /// A client request answered. `bytes`: the body sent, from the cache (`fromCache`) or from
    /// an upstream answer; `stream` names the stream it was for, if any.
    func request(_ kind: RequestClass, _ outcome: CacheOutcome, stream: String? = nil, bytes: Int = 0, fromCache: Bool = false) {
        requests[EdgeCounts.requestIndex(kind, outcome)].increment()
        if outcome == .collapsed { collapsedWaiters.increment() }
        let bytes = kind == .route ? 0 : max(0, bytes)
        if bytes > 0 { (fromCache ? bytesFromCache : bytesFromUpstream).increment(by: Int64(bytes)) }
        state.withLockedValue { state in
            state.counts.countRequest(kind, outcome)
            if fromCache { state.counts.bytesFromCache &+= bytes } else { state.counts.bytesFromUpstream &+= bytes }
            if let stream {
                state.streams.record(stream) { tally in
                    if outcome.isServedFromCache { tally.servedFromCache &+= 1 }
                    tally.bytes &+= bytes
                }
            }
        }
    }

    /// Body bytes sent that belong to a request counted elsewhere: SSE events relayed from the
    /// stream's upstream subscription, the catch-up reads of an SSE response.
    func sent(bytes: Int, fromCache: Bool, stream: String?) {
        guard bytes > 0 else { return }
        (fromCache ? bytesFromCache : bytesFromUpstream).increment(by: Int64(bytes))
        state.withLockedValue { state in
            if fromCache { state.counts.bytesFromCache &+= bytes } else { state.counts.bytesFromUpstream &+= bytes }
            if let stream { state.streams.updateIfTracked(stream) { $0.bytes &+= bytes } }
        }
    }

    func upstream(_ kind: RequestClass) {
        upstreamRequests[kind.ordinal].increment()
        state.withLockedValue { $0.counts.upstream[kind.ordinal] &+= 1 }
    }

    /// A stream upstream answer complete after `seconds`, with `bytes` of body.
    func upstreamAnswered(seconds: Double, bytes: Int) {
        upstreamLatency.record(seconds)
        upstreamReceived(bytes: bytes)
        state.withLockedValue { $0.counts.countLatency(seconds) }
    }

    /// Body bytes received from the stream upstream (SSE data as it arrives).
    func upstreamReceived(bytes: Int) {
        guard bytes > 0 else { return }
        bytesReceived.increment(by: Int64(bytes))
        state.withLockedValue { $0.counts.bytesReceived &+= bytes }
    }

    func upstreamFailed() {
        upstreamErrors.increment()
        state.withLockedValue { $0.counts.upstreamErrors &+= 1 }
    }

    func routeUpstreamFailed() {
        routeUpstreamErrors.increment()
        state.withLockedValue { $0.counts.routeUpstreamErrors &+= 1 }
    }

    /// The kinds of reader that stay connected, waiting for data.
    /// A reader of `stream` started waiting (an SSE response, a long-poll in flight).
    func liveReaderStarted(_ stream: String, _ kind: LiveReaders.Kind) {
        (kind == .sse ? openSSE : openLongPolls).increment()
        state.withLockedValue { $0.liveReaders.started(stream, kind) }
    }

    func liveReaderEnded(_ stream: String, _ kind: LiveReaders.Kind) {
        (kind == .sse ? openSSE : openLongPolls).decrement()
        state.withLockedValue { $0.liveReaders.ended(stream, kind) }
    }

    /// Takes this second's sample into the history (called once a second; `time` in Unix seconds).
    func sample(at time: Int64, cache: ResponseCache.Stats, openConnections: Int, sseSubscriptions: Int) {
        upstreamSSESubscriptions.set(Double(sseSubscriptions))
        let newEvictions: Int = state.withLockedValue { state in
            if state.startedAt == 0 { state.startedAt = time }
            state.counts.evictions = cache.evictions
            let gauges = EdgeGauges(
                cacheBytes: cache.bytes, cacheEntries: cache.entries, openConnections: openConnections, openSSE: state.liveReaders.sse,
                openLongPolls: state.liveReaders.longPolls, upstreamSSESubscriptions: sseSubscriptions)
            state.history.record(EdgeSample(counts: state.counts.since(state.lastSampled), gauges: gauges), at: time)
            state.lastSampled = state.counts
            return reportEvictions(&state, cache.evictions)
        }
        if newEvictions > 0 { cacheEvictions.increment(by: Int64(newEvictions)) }
    }

    private func reportEvictions(_ state: inout State, _ evictions: Int) -> Int {
        let new = max(0, evictions - state.evictionsReported)
        state.evictionsReported = max(state.evictionsReported, evictions)
        return new
    }

    func update(cache: ResponseCache.Stats, routeCache: RouteCache.Stats) {
        cacheBytes.set(Double(cache.bytes))
        cacheEntries.set(Double(cache.entries))
        let newEvictions = state.withLockedValue { reportEvictions(&$0, cache.evictions) }
        if newEvictions > 0 { cacheEvictions.increment(by: Int64(newEvictions)) }
        routeCacheBytes.set(Double(routeCache.bytes))
        routeCacheEntries.set(Double(routeCache.entries))
    }

    /// Prometheus text exposition.
    func render(cache: ResponseCache.Stats, routeCache: RouteCache.Stats) -> [UInt8] {
        update(cache: cache, routeCache: routeCache)
        return registry.emitToBuffer()
    }

    /// Which part of the history a stats request asks for (shared with the origin).
    typealias HistoryRequest = ServerSupport.HistoryRequest

    /// The figures as JSON, for `/__edge/stats` and the dashboards: totals since the edge
    /// started, ratios, the busiest streams, and the part of the history asked for.
    func json(
        cache: ResponseCache.Stats, routeCache: RouteCache.Stats, openConnections: Int, history: HistoryRequest = .none,
        now: Int64
    ) -> [UInt8] {
        let (counts, openSSE, openLongPolls, top, live, samples, startedAt, tracked) = state.withLockedValue { state in
            let top = state.streams.top(20)
            let samples: [SampleHistory<EdgeSample>.Stamped]
            switch history {
            case .none: samples = []
            case .seconds: samples = state.history.seconds()
            case .secondsAfter(let time): samples = state.history.seconds(after: time)
            case .minutes: samples = state.history.minutes()
            }
            let live = top.map { state.liveReaders.count(for: $0.key) }
            return (state.counts, state.liveReaders.sse, state.liveReaders.longPolls, top, live, samples, state.startedAt, state.streams.total)
        }
        let clientRequests = counts.clientRequests
        let upstreamRequests = counts.upstreamRequests
        let requestsByName = Dictionary(uniqueKeysWithValues: RequestClass.allCases.map { kind in
            (kind.rawValue, Dictionary(uniqueKeysWithValues: CacheOutcome.allCases.map { ($0.rawValue, counts.requests(kind, $0)) }.filter { $0.1 > 0 }))
        }.filter { !$0.1.isEmpty })
        let upstreamByName = Dictionary(uniqueKeysWithValues: RequestClass.allCases.map { ($0.rawValue, counts.upstream[$0.ordinal]) }.filter { $0.1 > 0 })
        let streamBytes = counts.bytesFromCache + counts.bytesFromUpstream
        var object: [String: Any] = [
            "now": now,
            "startedAt": startedAt,
            "requests": requestsByName,
            "upstreamRequests": upstreamByName,
            "clientRequestsTotal": clientRequests,
            "upstreamRequestsTotal": upstreamRequests,
            "collapsedWaiters": RequestClass.allCases.reduce(0) { $0 + counts.requests($1, .collapsed) },
            "hitRate": Self.ratio(counts.servedFromCache, counts.cacheCandidates) ?? 0,
            "requestOffload": Self.ratio(counts.streamRequests - counts.streamUpstreamRequests, counts.streamRequests) ?? 0,
            "byteOffload": Self.ratio(streamBytes - counts.bytesReceived, streamBytes) ?? 0,
            "bytesSaved": max(0, streamBytes - counts.bytesReceived),
            "collapseRatio": upstreamRequests == 0 ? 0 : Double(clientRequests) / Double(upstreamRequests),
            "bytesFromCache": counts.bytesFromCache,
            "bytesFromUpstream": counts.bytesFromUpstream,
            "bytesReceived": counts.bytesReceived,
            "upstreamErrors": counts.upstreamErrors,
            "routeUpstreamErrors": counts.routeUpstreamErrors,
            "routeCache": [
                "bytes": routeCache.bytes, "entries": routeCache.entries, "evictions": routeCache.evictions, "budget": routeCache.budget,
            ],
            "openConnections": openConnections,
            "openSSE": openSSE,
            "openLongPolls": openLongPolls,
            "cache": ["bytes": cache.bytes, "entries": cache.entries, "evictions": cache.evictions, "budget": cache.budget],
            "topStreams": zip(top, live).map { entry, live -> [String: Any] in
                [
                    "stream": entry.key, "requests": entry.count, "error": entry.error, "servedFromCache": entry.tally.servedFromCache,
                    "bytes": entry.tally.bytes, "liveReaders": live,
                ]
            },
            "topStreamsTracked": Self.trackedStreams,
            "topStreamsRequests": tracked,
        ]
        if let p50 = counts.latencyQuantile(0.5) { object["upstreamLatencyP50"] = p50.isFinite ? p50 : -1 }
        if let p99 = counts.latencyQuantile(0.99) { object["upstreamLatencyP99"] = p99.isFinite ? p99 : -1 }
        var bytes = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
        if history != .none {
            // Numbers only, written directly: thousands of rows go out when a page opens, and
            // JSONSerialization would build an object tree for each.
            bytes.removeLast()  // the closing brace
            bytes += Array(#","history":"#.utf8)
            bytes += Self.historyJSON(samples, step: history == .minutes ? 60 : 1)
            bytes.append(UInt8(ascii: "}"))
        }
        return bytes
    }

    static func ratio(_ part: Int, _ whole: Int) -> Double? {
        whole > 0 ? Double(part) / Double(whole) : nil
    }

    /// The columns of a history row, in order.
    static let historyColumns: [String] =
        ["time", "span"] + CacheOutcome.allCases.map(\.rawValue) + RequestClass.allCases.map(\.rawValue) + [
            "served_from_cache", "cache_candidates", "stream_requests", "upstream_requests", "long_poll_upstream_requests",
            "bytes_from_cache", "bytes_from_upstream", "bytes_received", "upstream_errors", "route_upstream_errors", "evictions",
            "latency_p50", "latency_p99", "cache_bytes", "cache_entries", "open_connections", "open_sse", "open_long_polls",
            "sse_subscriptions",
        ]

    /// `{"step":S,"columns":[…],"rows":[[…],…]}`: requests by outcome count every class, the
    /// ratios' parts (`served_from_cache` ÷ `cache_candidates`, upstream ÷ stream requests)
    /// leave `route` out; latencies are bucket bounds in seconds, -1 past the last bound, null
    /// without upstream answers.
    static func historyJSON(_ samples: [SampleHistory<EdgeSample>.Stamped], step: Int) -> [UInt8] {
        var out = "{\"step\":\(step),\"columns\":[" + historyColumns.map { "\"\($0)\"" }.joined(separator: ",") + "],\"rows\":["
        out.reserveCapacity(samples.count * 160)
        for (index, stamped) in samples.enumerated() {
            let counts = stamped.sample.counts
            let gauges = stamped.sample.gauges
            var row: [String] = [String(stamped.time), String(stamped.span)]
            for outcome in CacheOutcome.allCases {
                row.append(String(RequestClass.allCases.reduce(0) { $0 + counts.requests($1, outcome) }))
            }
            for kind in RequestClass.allCases {
                row.append(String(CacheOutcome.allCases.reduce(0) { $0 + counts.requests(kind, $1) }))
            }
            func latency(_ quantile: Double) -> String {
                guard let value = counts.latencyQuantile(quantile) else { return "null" }
                return value.isFinite ? String(value) : "-1"
            }
            row += [
                String(counts.servedFromCache), String(counts.cacheCandidates), String(counts.streamRequests),
                String(counts.streamUpstreamRequests), String(counts.upstream[RequestClass.longPoll.ordinal]),
                String(counts.bytesFromCache), String(counts.bytesFromUpstream), String(counts.bytesReceived),
                String(counts.upstreamErrors), String(counts.routeUpstreamErrors), String(counts.evictions),
                latency(0.5), latency(0.99), String(gauges.cacheBytes), String(gauges.cacheEntries), String(gauges.openConnections),
                String(gauges.openSSE), String(gauges.openLongPolls), String(gauges.upstreamSSESubscriptions),
            ]
            if index > 0 { out += "," }
            out += "[" + row.joined(separator: ",") + "]"
        }
        out += "]}"
        return Array(out.utf8)
    }
}
