import NIOCore
import ServerSupport

/// One `[[route]]` of `edge.conf`: requests whose path starts with `pathPrefix` go, as they are,
/// to another upstream (an application server beside the origin), the way a plain reverse proxy
/// would pass them on. Nothing of the Durable Streams protocol applies to them; answers are
/// cached only when they say they may be (`RouteCache`).
public struct EdgeRoute: Sendable, Equatable {
    /// Starts with `/`; matched against the request's path (before any `?`) byte for byte, the
    /// longest matching prefix winning. `/api/` matches `/api/x` but not `/api`.
    public var pathPrefix: String
    public var upstreamHost: String
    public var upstreamPort: Int
    /// Set for an `https://` upstream: how the edge checks it (verification on by default, the
    /// system's trust store unless `ca_file` says otherwise); `nil` for `http://`.
    public var upstreamTLS: UpstreamTLSSettings?
    /// Pooled keep-alive connections to this route's upstream.
    public var maxConnections = 64
    /// Bound on one exchange with the route's upstream, waiting for a connection included;
    /// past it the client gets 504.
    public var timeout: TimeAmount = .seconds(30)
    /// The largest answer body taken from the route's upstream. Answers are buffered whole
    /// before they are passed on, so a bigger one is refused with 502 rather than held.
    public var maxResponseBytes = 8 << 20

    public init(pathPrefix: String, upstreamHost: String, upstreamPort: Int) {
        self.pathPrefix = pathPrefix
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
    }

    /// Settings a `[[route]]` table may hold.
    public static let fileKeys: Set<String> = [
        "path_prefix", "upstream", "max_connections", "timeout", "max_response_bytes", "ca_file", "tls_verify", "server_name",
    ]

    /// The most `[[route]]` tables an `edge.conf` may hold: each has a connection pool of its own,
    /// and matching walks them all.
    public static let maxRoutes = 64

    /// The route one `[[route]]` table describes, on its own; `EdgeConfiguration.applyRoutes`
    /// checks the routes against each other and the edge's own paths.
    public init(_ section: ConfigurationFile.Section) throws {
        try section.rejectUnknownKeys(Self.fileKeys)
        guard let prefix = try section.string("path_prefix") else {
            throw section.problem("[[route]] needs 'path_prefix', e.g. \"/api/\"")
        }
        guard prefix.hasPrefix("/") else { throw section.problem("path_prefix", "'path_prefix' must start with /") }
        // The prefix is compared with request targets as they arrive: what cannot be in one
        // (blanks, controls, a query or fragment) would make a route that never matches.
        guard prefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }) else {
            throw section.problem("path_prefix", "'path_prefix' must be a URL path: printable ASCII, no spaces, '?' or '#'")
        }
        guard let text = try section.string("upstream") else {
            throw section.problem("[[route]] for \(prefix) needs 'upstream', e.g. \"http://127.0.0.1:9000\"")
        }
        guard let (secure, host, port) = EdgeConfiguration.parseUpstreamURL(text) else {
            throw section.problem(
                "upstream", "'upstream' must be an http:// or https:// URL with host and port, e.g. \"http://127.0.0.1:9000\"")
        }
        self.init(pathPrefix: prefix, upstreamHost: host, upstreamPort: port)
        upstreamTLS = secure ? UpstreamTLSSettings() : nil
        let caFile = try section.string("ca_file")
        let verify = try section.bool("tls_verify")
        let serverName = try section.string("server_name")
        if !secure, caFile != nil || verify != nil || serverName != nil {
            let key = caFile != nil ? "ca_file" : verify != nil ? "tls_verify" : "server_name"
            throw section.problem(key, "'\(key)' applies only to an https:// upstream")
        }
        if let caFile { upstreamTLS?.caFile = caFile }
        if let verify { upstreamTLS?.verify = verify }
        if let serverName { upstreamTLS?.serverName = serverName }
        if let value = try section.int("max_connections") {
            guard value > 0 else { throw section.problem("max_connections", "'max_connections' must be positive") }
            maxConnections = value
        }
        if let value = try section.duration("timeout") {
            guard value > .zero else { throw section.problem("timeout", "'timeout' must be longer than 0") }
            timeout = value
        }
        if let value = try section.int("max_response_bytes") {
            guard value > 0 else { throw section.problem("max_response_bytes", "'max_response_bytes' must be positive") }
            maxResponseBytes = value
        }
    }
}
