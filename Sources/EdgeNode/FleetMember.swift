/// One server the fleet dashboard shows: an edge (its `/__edge/stats`) or the origin (its
/// `/__origin/stats`), reached over HTTP or HTTPS.
public struct FleetMember: Sendable, Equatable {
    public enum Kind: String, Sendable { case edge, origin }

    public var kind: Kind
    /// As given (`http://HOST:PORT`), shown on the page.
    public var url: String
    public var host: String
    public var port: Int
    /// Set for `https://`: checked against the system's trust store (or `caFile`).
    public var tls: UpstreamTLSSettings?
    /// The member's stats path: `/__edge/stats` or `/__origin/stats` unless configured otherwise.
    public var statsPath: String

    /// The edge serving the fleet page itself: shown as `label`, never fetched.
    init(localEdge label: String) {
        kind = .edge
        url = label
        host = "127.0.0.1"
        port = 0
        tls = nil
        statsPath = "/__edge/stats"
    }

    /// A member from `http(s)://HOST:PORT`; nil for anything else.
    public init?(kind: Kind, url: String, statsPath: String? = nil) {
        guard let (secure, host, port) = EdgeConfiguration.parseUpstreamURL(url) else { return nil }
        self.kind = kind
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.host = host
        self.port = port
        self.tls = secure ? UpstreamTLSSettings() : nil
        self.statsPath = statsPath ?? (kind == .edge ? "/__edge/stats" : "/__origin/stats")
    }
}
