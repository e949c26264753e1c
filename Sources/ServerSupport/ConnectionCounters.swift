import Prometheus

/// The counters both servers keep about the connections they cut off, registered under the
/// server's own prefix (`ds_origin_…`, `ds_edge_…`).
public struct ConnectionCounters: Sendable {
    private let refused: Counter
    private let timedOut: [ConnectionTimeouts.Expiry: Counter]

    public init(registry: PrometheusCollectorRegistry, subsystem: String) {
        func name(_ metric: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: subsystem, metricName: metric, unitName: "total", helpText: help)
        }
        refused = registry.makeCounter(
            descriptor: name("connections_refused", "Connections closed on arrival because max_connections were open"))
        var timedOut: [ConnectionTimeouts.Expiry: Counter] = [:]
        for reason in ConnectionTimeouts.Expiry.allCases {
            timedOut[reason] = registry.makeCounter(
                descriptor: name("connections_timed_out", "Connections closed by a timeout (idle, request_timeout, send_stalled)"),
                labels: [("reason", reason.rawValue)])
        }
        self.timedOut = timedOut
    }

    /// A connection was closed on arrival.
    public func connectionRefused() { refused.increment() }

    /// A connection was closed by a timeout.
    public func connectionTimedOut(_ reason: ConnectionTimeouts.Expiry) { timedOut[reason]?.increment() }
}
