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
    /// Forwarded without caching (writes, HEAD, SSE, `offset=now`, uncacheable answers, and
    /// route requests or answers that `RouteCachePolicy` keeps out of the cache).
    case pass = "PASS"
}

/// The kinds of request the edge tells apart in its metrics.
public enum RequestClass: String, Sendable, CaseIterable {
    case catchUp = "catch_up"
    case longPoll = "long_poll"
    case sse
    case write
    case head
    case other
    /// A request for a `[[route]]`, passed to that route's upstream (HIT and MISS: the route
    /// cache, `RouteCache`).
    case route
}

/// The edge's counters, gauges and histogram, at `/metrics` (Prometheus text) and
/// `/__edge/stats` (JSON). Every name starts with `ds_edge_`.
public final class EdgeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let requests: [RequestClass: [CacheOutcome: Counter]]
    private let upstreamRequests: [RequestClass: Counter]
    let collapsedWaiters: Counter
    let bytesFromCache: Counter
    let bytesFromUpstream: Counter
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
    let cacheBytes: Gauge
    let cacheEntries: Gauge
    let cacheEvictions: Gauge
    let upstreamLatency: ValueHistogram
    let connectionCounters: ConnectionCounters
    /// Plain totals for the JSON view and the dashboard (Prometheus counters are write-only).
    private let totals = NIOLockedValueBox(Totals())

    struct Totals {
        // Keyed by the enums, not their names: this is updated on every request, the JSON
        // view that needs names is rendered rarely.
        var requests: [RequestClass: [CacheOutcome: Int]] = [:]
        var upstream: [RequestClass: Int] = [:]
        var collapsed = 0
        var bytesFromCache = 0
        var bytesFromUpstream = 0
        var upstreamErrors = 0
        var routeUpstreamErrors = 0
    }

    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "edge", metricName: metric, unitName: unit, helpText: help)
        }
        var requests: [RequestClass: [CacheOutcome: Counter]] = [:]
        var upstream: [RequestClass: Counter] = [:]
        for kind in RequestClass.allCases {
            for outcome in CacheOutcome.allCases {
                requests[kind, default: [:]][outcome] = registry.makeCounter(
                    descriptor: name("requests", "total", "Client requests by class and cache outcome"),
                    labels: [("class", kind.rawValue), ("cache", outcome.rawValue)])
            }
            upstream[kind] = registry.makeCounter(
                descriptor: name("upstream_requests", "total", "Requests sent upstream, by class"), labels: [("class", kind.rawValue)])
        }
        self.requests = requests
        self.upstreamRequests = upstream
        collapsedWaiters = registry.makeCounter(descriptor: name("collapsed_waiters", "total", "Client requests answered by another client's upstream request"))
        bytesFromCache = registry.makeCounter(descriptor: name("cache_served_bytes", "total", "Body bytes served from the cache"))
        bytesFromUpstream = registry.makeCounter(descriptor: name("upstream_served_bytes", "total", "Body bytes served from upstream answers"))
        upstreamErrors = registry.makeCounter(descriptor: name("upstream_errors", "total", "Upstream requests that failed (connect, timeout, closed)"))
        routeUpstreamErrors = registry.makeCounter(
            descriptor: name("route_upstream_errors", "total", "Requests to [[route]] upstreams that failed (connect, timeout, closed, too large)"))
        authRefusals = AuthRefusalCounters(registry: registry, subsystem: "edge")
        routeCacheBytes = registry.makeGauge(descriptor: name("route_cache_bytes", "", "Bytes held by the cache of [[route]] answers"))
        routeCacheEntries = registry.makeGauge(descriptor: name("route_cache_entries", "", "Entries in the cache of [[route]] answers"))
        openConnections = registry.makeGauge(descriptor: name("open_connections", "", "Open client connections"))
        openSSE = registry.makeGauge(descriptor: name("open_sse_connections", "", "Client SSE responses in progress"))
        cacheBytes = registry.makeGauge(descriptor: name("cache_bytes", "", "Bytes held by the cache, headers included"))
        cacheEntries = registry.makeGauge(descriptor: name("cache_entries", "", "Entries in the cache"))
        cacheEvictions = registry.makeGauge(descriptor: name("cache_evictions", "total", "Entries evicted to stay within the budget"))
        upstreamLatency = registry.makeValueHistogram(
            descriptor: name("upstream_latency", "seconds", "Time to a complete upstream answer"),
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        connectionCounters = ConnectionCounters(registry: registry, subsystem: "edge")
    }

    func request(_ kind: RequestClass, _ outcome: CacheOutcome) {
        requests[kind]?[outcome]?.increment()
        if outcome == .collapsed { collapsedWaiters.increment() }
        totals.withLockedValue {
            $0.requests[kind, default: [:]][outcome, default: 0] += 1
            if outcome == .collapsed { $0.collapsed += 1 }
        }
    }

    func upstream(_ kind: RequestClass) {
        upstreamRequests[kind]?.increment()
        totals.withLockedValue { $0.upstream[kind, default: 0] += 1 }
    }

    func upstreamFailed() {
        upstreamErrors.increment()
        totals.withLockedValue { $0.upstreamErrors += 1 }
    }

    func routeUpstreamFailed() {
        routeUpstreamErrors.increment()
        totals.withLockedValue { $0.routeUpstreamErrors += 1 }
    }

    func served(bytes: Int, fromCache: Bool) {
        guard bytes > 0 else { return }
        (fromCache ? bytesFromCache : bytesFromUpstream).increment(by: Int64(bytes))
        totals.withLockedValue {
            if fromCache { $0.bytesFromCache += bytes } else { $0.bytesFromUpstream += bytes }
        }
    }

    func update(cache: ResponseCache.Stats, routeCache: RouteCache.Stats) {
        cacheBytes.set(Double(cache.bytes))
        cacheEntries.set(Double(cache.entries))
        cacheEvictions.set(Double(cache.evictions))
        routeCacheBytes.set(Double(routeCache.bytes))
        routeCacheEntries.set(Double(routeCache.entries))
    }

    /// Prometheus text exposition.
    func render(cache: ResponseCache.Stats, routeCache: RouteCache.Stats) -> [UInt8] {
        update(cache: cache, routeCache: routeCache)
        return registry.emitToBuffer()
    }

    /// The same figures as JSON, for `/__edge/stats` and the dashboard.
    func json(cache: ResponseCache.Stats, routeCache: RouteCache.Stats, openConnections: Int) -> [UInt8] {
        let totals = self.totals.withLockedValue { $0 }
        let clientRequests = totals.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        let upstreamRequests = totals.upstream.values.reduce(0, +)
        // The hit rate is the stream cache's: route answers are cached by other rules
        // (`routeCache` and the `route` class say how that goes).
        let streamRequests = totals.requests.filter { $0.key != .route }.values
        let hits = streamRequests.reduce(0) { $0 + ($1[.hit] ?? 0) + ($1[.stale] ?? 0) + ($1[.revalidated] ?? 0) }
        let cacheable = streamRequests.reduce(0) { $0 + $1.filter { $0.key != .pass }.values.reduce(0, +) }
        let requestsByName = Dictionary(uniqueKeysWithValues: totals.requests.map { kind, outcomes in
            (kind.rawValue, Dictionary(uniqueKeysWithValues: outcomes.map { ($0.key.rawValue, $0.value) }))
        })
        let upstreamByName = Dictionary(uniqueKeysWithValues: totals.upstream.map { ($0.key.rawValue, $0.value) })
        let object: [String: Any] = [
            "requests": requestsByName,
            "upstreamRequests": upstreamByName,
            "clientRequestsTotal": clientRequests,
            "upstreamRequestsTotal": upstreamRequests,
            "collapsedWaiters": totals.collapsed,
            "hitRate": cacheable == 0 ? 0 : Double(hits) / Double(cacheable),
            "collapseRatio": upstreamRequests == 0 ? 0 : Double(clientRequests) / Double(upstreamRequests),
            "bytesFromCache": totals.bytesFromCache,
            "bytesFromUpstream": totals.bytesFromUpstream,
            "upstreamErrors": totals.upstreamErrors,
            "routeUpstreamErrors": totals.routeUpstreamErrors,
            "routeCache": [
                "bytes": routeCache.bytes, "entries": routeCache.entries, "evictions": routeCache.evictions, "budget": routeCache.budget,
            ],
            "openConnections": openConnections,
            "cache": ["bytes": cache.bytes, "entries": cache.entries, "evictions": cache.evictions, "budget": cache.budget],
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }
}
