import Prometheus

/// Why a request was refused before it reached the server's own handling, as counted in
/// `ds_origin_auth_refusals_total` and `ds_edge_auth_refusals_total` (label `reason`).
public enum AuthRefusal: String, CaseIterable, Sendable {
    /// 401 without credentials.
    case missing
    /// 401 with credentials that were not accepted (unknown key, bad or expired token, another
    /// scheme), or 400 for more than one `Authorization` header.
    case invalid
    /// 403: the credentials do not allow the request.
    case forbidden
    /// 503: no decision could be made (too many new tokens being verified, forward auth down).
    case unavailable
}

/// One counter per `AuthRefusal`, made once: counting is a dictionary lookup.
public struct AuthRefusalCounters: Sendable {
    private let counters: [AuthRefusal: Counter]

    /// Registers `ds_<subsystem>_auth_refusals_total{reason=…}`.
    public init(registry: PrometheusCollectorRegistry, subsystem: String) {
        let descriptor = MetricNameDescriptor(
            namespace: "ds", subsystem: subsystem, metricName: "auth_refusals", unitName: "total",
            helpText: "Requests refused by authentication or authorization, by reason (missing, invalid, forbidden, unavailable)")
        var counters: [AuthRefusal: Counter] = [:]
        for reason in AuthRefusal.allCases {
            counters[reason] = registry.makeCounter(descriptor: descriptor, labels: [("reason", reason.rawValue)])
        }
        self.counters = counters
    }

    public func count(_ reason: AuthRefusal) {
        counters[reason]?.increment()
    }
}
