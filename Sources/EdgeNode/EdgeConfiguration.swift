import Foundation
import NIOCore
import ServerSupport
import StreamAuth

/// Everything an edge node can be told. Defaults are what `durable-streams edge` uses.
public struct EdgeConfiguration: Sendable {
    /// How requests carrying credentials use the cache.
    public enum CredentialPolicy: String, Sendable, CaseIterable {
        /// Cache per credential: the key includes the `Authorization` value itself, so users never share entries.
        case partition
        /// Never cache requests that carry `Authorization` (they still collapse per credential).
        case bypass
        /// Check credentials at the edge (the same API keys and JWT keys as the origin, from
        /// `auth`), refuse what they do not allow, and serve every authorised reader from one
        /// shared cache entry per stream and offset, collapsing readers across users. Reads go
        /// upstream with the edge's own credential (`upstreamAuthorizationFile`); writes keep the
        /// client's, for the origin to check as well.
        case verify
    }

    public var host = "127.0.0.1"
    public var port = 4438
    /// The upstream: an origin or another edge.
    public var upstreamHost = "127.0.0.1"
    public var upstreamPort = 4437
    /// TLS to the upstream: set for an `https://` upstream, `nil` for `http://`.
    public var upstreamTLS: UpstreamTLSSettings?
    /// The upstream as a URL, for logs.
    public var upstreamURL: String {
        "\(upstreamTLS == nil ? "http" : "https")://\(upstreamHost.contains(":") ? "[\(upstreamHost)]" : upstreamHost):\(upstreamPort)"
    }
    /// Bytes the cache may hold, headers and bookkeeping included.
    public var cacheBudgetBytes = 256 << 20
    /// Pooled keep-alive connections to the upstream (SSE subscriptions use their own).
    public var upstreamMaxConnections = 64
    /// Connections for long-polls held upstream, a pool of their own. Collapsing makes this one
    /// per (stream, offset, cursor) being waited on, not one per reader.
    public var upstreamMaxLongPollConnections = 1024
    public var upstreamConnectTimeout: TimeAmount = .seconds(2)
    /// Bound on a catch-up read, write or HEAD forwarded upstream; past it the client gets 504.
    public var upstreamTimeout: TimeAmount = .seconds(10)
    /// Bound on a long-poll held upstream; should exceed the upstream's own long-poll timeout.
    public var upstreamLongPollTimeout: TimeAmount = .seconds(40)
    /// How often the edge ends client SSE responses so readers re-balance and re-collapse.
    public var sseReconnectInterval: TimeAmount = .seconds(60)
    /// Serve a stale tail entry this long past its max-age while one revalidation runs, unless
    /// the upstream's `Cache-Control` says otherwise.
    public var staleWhileRevalidate: TimeAmount = .seconds(300)
    /// Serve a stale entry this long past its max-age when the upstream fails.
    public var staleIfError: TimeAmount = .seconds(600)
    public var credentials = CredentialPolicy.partition
    /// The keys `credentials = verify` checks requests with (the same settings as the origin's).
    public var auth = AuthSettings()
    /// A file holding the credential (an API key or a token, without `Bearer `) the edge sends
    /// upstream for the reads it has authorised, when the upstream requires one.
    public var upstreamAuthorizationFile: String?
    /// Keep the `X-Forwarded-Host` and `X-Forwarded-Proto` a request arrives with instead of
    /// setting them from the request's `Host` and this edge's listener (TLS or not). Only for an
    /// edge whose clients are other edges (an inner tier): a client's values would otherwise end
    /// up in the URLs the origin builds (`Location`, a subscription's `callback_url`).
    public var trustForwardedHost = false
    public var maxBodyBytes = 64 << 20
    public var streamPathPrefix = "/v1/stream/"
    public var metricsPath = "/metrics"
    public var statsPath = "/__edge/stats"
    public var dashboardPath = "/__edge/"
    /// Other edges to show beside this one on the fleet page (`dashboardPath` + `fleet/`),
    /// as `http(s)://HOST:PORT`; empty: no fleet page.
    public var peers: [String] = []
    /// The origin whose own request rate the fleet page shows (`/__origin/stats`).
    public var fleetOrigin: String?
    /// The fleet page's path: under the dashboard's.
    public var fleetPath: String { dashboardPath + (dashboardPath.hasSuffix("/") ? "" : "/") + "fleet/" }
    public var eventLoopThreads = System.coreCount
    /// Timeouts and caps on client connections (`header_timeout`, `max_connections`, …).
    public var limits = ConnectionLimits()
    /// Where one JSON line per request is appended (`-`: standard output); `nil`: no access log.
    public var accessLog: String?
    /// Listen with TLS (and offer HTTP/2) when set; plain HTTP/1.1 when `nil`.
    public var tls: TLSSettings?
    /// Other path prefixes passed, as a plain reverse proxy would, to upstreams of their own
    /// (`[[route]]`). Paths under `streamPathPrefix` and the edge's own pages are never routed.
    public var routes: [EdgeRoute] = []
    /// Bytes the cache of route answers may hold (answers that say `public` with a max-age),
    /// apart from the stream cache; 0 caches none. The origin's key set
    /// (`<prefix>__ds/jwks.json`) is kept there too, by the same rules.
    public var routeCacheBudgetBytes = 16 << 20

    /// Seconds since 1970: when streams expire (their `Stream-Expires-At`, or a sliding
    /// `Stream-TTL` renewed by a read). Injectable so tests need not wait.
    public var wallClock: @Sendable () -> Double = { Date().timeIntervalSince1970 }

    /// The monotonic clock cached answers age by: when they were stored, `max-age`, the stale
    /// windows, `Age`. Injectable so staleness tests move it instead of sleeping.
    public var clock: @Sendable () -> NIODeadline = { NIODeadline.now() }

    public init() {}

    /// Settings an `edge.conf` may hold.
    public static let fileKeys: Set<String> = Set<String>([
        "listen", "upstream", "cache_budget_bytes", "upstream_max_connections", "upstream_max_long_poll_connections", "upstream_connect_timeout",
        "upstream_timeout", "upstream_long_poll_timeout", "sse_reconnect_interval", "stale_while_revalidate",
        "stale_if_error", "credentials", "max_body_bytes", "metrics_path", "stats_path", "dashboard_path",
        "trust_forwarded_host", "upstream_authorization_file", "access_log", "route", "route_cache_budget_bytes",
        "upstream_ca_file", "upstream_tls_verify", "upstream_server_name", "peers", "fleet_origin",
    ])
        .union(ConnectionLimits.fileKeys)
        .union(AuthSettings.fileKeys)
        .union(TLSSettings.keys)

    /// Applies the settings present in `file` on top of `self`.
    public mutating func apply(_ file: ConfigurationFile) throws {
        try file.rejectUnknownKeys(Self.fileKeys)
        if let value = try file.string("listen") {
            guard let (host, port) = Self.parseHostPort(value) else {
                throw file.problem("listen", "'listen' must be HOST:PORT, e.g. \"127.0.0.1:4438\"")
            }
            self.host = host
            self.port = port
        }
        if let value = try file.string("upstream") {
            guard let (secure, host, port) = Self.parseUpstreamURL(value) else {
                throw file.problem(
                    "upstream", "'upstream' must be an http:// or https:// URL with host and port, e.g. \"http://127.0.0.1:4437\"")
            }
            upstreamHost = host
            upstreamPort = port
            upstreamTLS = secure ? UpstreamTLSSettings() : nil
        }
        let caFile = try file.string("upstream_ca_file")
        let verify = try file.bool("upstream_tls_verify")
        let serverName = try file.string("upstream_server_name")
        if upstreamTLS == nil, caFile != nil || verify != nil || serverName != nil {
            let key = caFile != nil ? "upstream_ca_file" : verify != nil ? "upstream_tls_verify" : "upstream_server_name"
            throw file.problem(key, "'\(key)' applies only to an https:// upstream")
        }
        if let caFile { upstreamTLS?.caFile = caFile }
        if let verify { upstreamTLS?.verify = verify }
        if let serverName { upstreamTLS?.serverName = serverName }
        if let peers = try file.strings("peers") {
            guard peers.count <= 64 else { throw file.problem("peers", "'peers' may list at most 64 edges") }
            for peer in peers where Self.parseUpstreamURL(peer) == nil {
                throw file.problem("peers", "'peers' must list http:// or https:// URLs with host and port; '\(peer)' is not one")
            }
            self.peers = peers
        }
        if let origin = try file.string("fleet_origin") {
            guard Self.parseUpstreamURL(origin) != nil else {
                throw file.problem("fleet_origin", "'fleet_origin' must be an http:// or https:// URL with host and port")
            }
            fleetOrigin = origin
        }
        if let value = try file.int("cache_budget_bytes") {
            guard value >= 0 else { throw file.problem("cache_budget_bytes", "'cache_budget_bytes' must not be negative") }
            cacheBudgetBytes = value
        }
        if let value = try file.int("upstream_max_connections") {
            guard value > 0 else { throw file.problem("upstream_max_connections", "'upstream_max_connections' must be positive") }
            upstreamMaxConnections = value
        }
        if let value = try file.int("upstream_max_long_poll_connections") {
            guard value > 0 else {
                throw file.problem("upstream_max_long_poll_connections", "'upstream_max_long_poll_connections' must be positive")
            }
            upstreamMaxLongPollConnections = value
        }
        if let value = try file.int("max_body_bytes") {
            guard value > 0 else { throw file.problem("max_body_bytes", "'max_body_bytes' must be positive") }
            maxBodyBytes = value
        }
        if let value = try file.duration("upstream_connect_timeout") { upstreamConnectTimeout = value }
        if let value = try file.duration("upstream_timeout") { upstreamTimeout = value }
        if let value = try file.duration("upstream_long_poll_timeout") { upstreamLongPollTimeout = value }
        if let value = try file.duration("sse_reconnect_interval") { sseReconnectInterval = value }
        if let value = try file.duration("stale_while_revalidate") { staleWhileRevalidate = value }
        if let value = try file.duration("stale_if_error") { staleIfError = value }
        if let value = try file.string("credentials") {
            guard let policy = CredentialPolicy(rawValue: value) else {
                throw file.problem("credentials", "'credentials' must be \"partition\", \"bypass\" or \"verify\"")
            }
            credentials = policy
        }
        if let value = try file.bool("trust_forwarded_host") { trustForwardedHost = value }
        for (key, path) in [("metrics_path", \EdgeConfiguration.metricsPath), ("stats_path", \.statsPath), ("dashboard_path", \.dashboardPath)] {
            if let value = try file.string(key) {
                guard value.hasPrefix("/") else { throw file.problem(key, "'\(key)' must start with /") }
                self[keyPath: path] = value
            }
        }
        if let value = try file.string("upstream_authorization_file") { upstreamAuthorizationFile = value }
        if let value = try file.string("access_log") { accessLog = value }
        tls = try TLSSettings.read(from: file)
        if let value = try file.int("route_cache_budget_bytes") {
            guard value >= 0 else { throw file.problem("route_cache_budget_bytes", "'route_cache_budget_bytes' must not be negative") }
            routeCacheBudgetBytes = value
        }
        // After the paths: routes are checked against them.
        try applyRoutes(file)
        try limits.apply(file)
        try auth.apply(file)
        if auth.forwardAuthURL != nil {
            // Not yet at an edge: refused rather than silently ignored.
            throw file.problem("forward_auth_url", "'forward_auth_url' is an origin setting; an edge with credentials = \"verify\" checks API keys and JWTs")
        }
        if credentials == .verify && !auth.isEnabled {
            throw file.problem("credentials", "'credentials = \"verify\"' needs api_keys_file or a jwt_* key file to check credentials with")
        }
    }

    /// Reads the file's `[[route]]` tables, refusing a prefix used twice or one that would take
    /// the edge's own requests (streams, metrics, stats, dashboard).
    mutating func applyRoutes(_ file: ConfigurationFile) throws {
        let sections = try file.tables("route")
        guard !sections.isEmpty else { return }
        if sections.count > EdgeRoute.maxRoutes {
            throw sections[EdgeRoute.maxRoutes].problem("at most \(EdgeRoute.maxRoutes) [[route]] tables")
        }
        var seen: [String: ConfigurationFile.Section] = [:]
        var routes: [EdgeRoute] = []
        for section in sections {
            let route = try EdgeRoute(section)
            let prefix = route.pathPrefix
            if let earlier = seen[prefix] {
                let line = earlier.headerLine.map { " at line \($0)" } ?? ""
                throw section.problem("path_prefix", "'path_prefix' \"\(prefix)\" is already used by the [[route]]\(line)")
            }
            seen[prefix] = section
            if let reason = reservedReason(prefix) {
                throw section.problem("path_prefix", "'path_prefix' \"\(prefix)\" \(reason)")
            }
            routes.append(route)
        }
        self.routes = routes
    }

    /// Why `prefix` may not be a route's (it equals or lies under a path the edge answers
    /// itself), or `nil`. A route above one (`/`) is allowed: those paths keep priority.
    func reservedReason(_ prefix: String) -> String? {
        if prefix.hasPrefix(streamPathPrefix) {
            return "lies under the stream path prefix \(streamPathPrefix), whose requests are the edge's own"
        }
        for (name, path) in [("metrics_path", metricsPath), ("stats_path", statsPath), ("dashboard_path", dashboardPath)] {
            let below = path.hasSuffix("/") ? path : path + "/"
            if prefix == path || prefix.hasPrefix(below) {
                return "equals or lies under \(name) \(path), which the edge answers itself"
            }
        }
        return nil
    }

    /// `HOST:PORT` (IPv6 in brackets).
    public static func parseHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    /// `http://HOST:PORT` or `https://HOST:PORT`, with an optional trailing `/`.
    public static func parseUpstreamURL(_ text: String) -> (secure: Bool, host: String, port: Int)? {
        let secure = text.hasPrefix("https://")
        guard secure || text.hasPrefix("http://") else { return nil }
        var rest = text.dropFirst(secure ? "https://".count : "http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), let (host, port) = parseHostPort(String(rest)) else { return nil }
        return (secure, host, port)
    }
}
