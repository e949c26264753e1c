import NIOConcurrencyHelpers
import Prometheus
import ServerSupport
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
