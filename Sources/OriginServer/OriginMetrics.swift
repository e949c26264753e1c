import NIOConcurrencyHelpers
import Prometheus
import ServerSupport
import StreamAuth
import StreamStore

/// The origin's counters and gauges, exposed at `/metrics` in Prometheus text format.
/// Every name starts with `ds_origin_`.
public final class OriginMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    let bytesIn: Counter
    let bytesOut: Counter
    let appends: Counter
    let appendedBytes: Counter
    let openLongPolls: Gauge
    let openSSE: Gauge
    let openConnections: Gauge
    let streams: Gauge
    let connectionCounters: ConnectionCounters
    private let storage: StorageMetrics
    /// Forward-auth checks asked of the endpoint, by what came of them.
    private let forwardAuthAsked: [String: Counter]
    private let forwardAuthCached: Counter
    private let forwardAuthJoined: Counter
    private let forwardAuthBusy: Counter
    /// Requests refused by authentication, by reason.
    let authRefusals: AuthRefusalCounters
    /// Request counters by (operation, status). The registry would find them too, but only after
    /// building the full name and label list on every request; this keeps the hot path to one
    /// small dictionary lookup.
    private let requestCounters = NIOLockedValueBox<[RequestKey: Counter]>([:])

    private struct RequestKey: Hashable {
        var operation: String
        var status: UInt
    }

    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "origin", metricName: metric, unitName: unit, helpText: help)
        }
        bytesIn = registry.makeCounter(descriptor: name("request_bytes", "total", "Request body bytes received"))
        bytesOut = registry.makeCounter(descriptor: name("response_bytes", "total", "Response body bytes sent"))
        appends = registry.makeCounter(descriptor: name("appends", "total", "Appends that added data"))
        appendedBytes = registry.makeCounter(descriptor: name("appended_bytes", "total", "Bytes appended to streams, initial PUT bodies included"))
        openLongPolls = registry.makeGauge(descriptor: name("open_long_polls", "", "Long-polls in progress"))
        openSSE = registry.makeGauge(descriptor: name("open_sse_connections", "", "SSE responses in progress"))
        openConnections = registry.makeGauge(descriptor: name("open_connections", "", "Open client connections"))
        streams = registry.makeGauge(descriptor: name("streams", "", "Streams in the store"))
        connectionCounters = ConnectionCounters(registry: registry, subsystem: "origin")
        storage = StorageMetrics(registry: registry)
        let checks = MetricNameDescriptor(
            namespace: "ds", subsystem: "origin", metricName: "forward_auth_checks", unitName: "total",
            helpText: "Forward-auth checks asked of the endpoint, by result (allowed, unauthorized, forbidden, failed)")
        var asked: [String: Counter] = [:]
        for result in ["allowed", "unauthorized", "forbidden", "failed"] {
            asked[result] = registry.makeCounter(descriptor: checks, labels: [("result", result)])
        }
        forwardAuthAsked = asked
        forwardAuthCached = registry.makeCounter(
            descriptor: name("forward_auth_cache_hits", "total", "Forward-auth checks answered by a remembered decision"))
        forwardAuthJoined = registry.makeCounter(
            descriptor: name("forward_auth_joined", "total", "Forward-auth checks that shared the answer of the same check in flight"))
        forwardAuthBusy = registry.makeCounter(
            descriptor: name("forward_auth_busy", "total", "Forward-auth checks refused (503) because too many were in flight"))
        authRefusals = AuthRefusalCounters(registry: registry, subsystem: "origin")
    }

    /// Counts what a forward-auth check came to.
    func forwardAuth(_ event: ForwardAuthority.Event) {
        switch event {
        case .asked(.allowed): forwardAuthAsked["allowed"]?.increment()
        case .asked(.refused(let unauthorized, _)): forwardAuthAsked[unauthorized ? "unauthorized" : "forbidden"]?.increment()
        case .asked(.failed), .asked(.busy): forwardAuthAsked["failed"]?.increment()
        case .cached: forwardAuthCached.increment()
        case .joined: forwardAuthJoined.increment()
        case .busy: forwardAuthBusy.increment()
        }
    }

    /// Counts one answered request. `operation` is one of create, append, close, read,
    /// long_poll, sse, head, delete, options, metrics, other.
    func request(_ operation: String, status: UInt) {
        let key = RequestKey(operation: operation, status: status)
        let counter = requestCounters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "ds", subsystem: "origin", metricName: "requests", unitName: "total",
                    helpText: "Requests answered, by operation and status"),
                labels: [("operation", operation), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// The Prometheus text exposition of every metric.
    func render(streamCount: Int, storage statistics: StoreStatistics?) -> [UInt8] {
        streams.set(Double(streamCount))
        if let statistics { storage.update(statistics) }
        return registry.emitToBuffer()
    }
}
