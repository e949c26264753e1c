import NIOCore

/// What one client connection may cost a server, and for how long: the timeouts and caps that
/// keep a client that stops sending, stops reading or opens too many connections from costing
/// more than a few bytes and a descriptor. Both servers take the same settings, under the same
/// names in `origin/origin.conf` and `edge.conf`.
public struct ConnectionLimits: Sendable, Equatable {
    /// A request's head must be complete this long after its first byte arrived.
    public var headerTimeout: TimeAmount = .seconds(10)
    /// A connection with no request in progress is closed after this long (keep-alive idle).
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request body may arrive slower than `minBodyBytesPerSecond` for this long at first,
    /// and must then keep up that rate on average; and no gap between its parts may last this
    /// long (a stalled upload is cut however much it sent before).
    public var bodyTimeout: TimeAmount = .seconds(10)
    /// The slowest average rate a request body may arrive at once `bodyTimeout` has passed.
    public var minBodyBytesPerSecond = 1024
    /// While bytes wait for a client, it must take at least `minSendBytesPerSecond` of them on
    /// average over each period this long, or its connection is closed.
    public var sendTimeout: TimeAmount = .seconds(60)
    /// The slowest a client may read what waits for it (see `sendTimeout`).
    public var minSendBytesPerSecond = 1024
    /// Client connections open at once. Beyond it, new connections are closed at once. It is
    /// also kept below the process's descriptor limit (see `effectiveMaxConnections`).
    public var maxConnections = 20_000
    /// Request-body bytes all connections together may hold while their requests are still
    /// arriving. A request that would go beyond it gets 503.
    public var maxRequestBytesInFlight = 256 << 20

    public init() {}

    /// Descriptors kept free of client connections: listening sockets, upstream pools, logs,
    /// and the files a store opens.
    public static let reservedDescriptors = 256

    /// `maxConnections`, lowered so that client connections alone can never use up the
    /// process's descriptors (accepting would then fail and lock everyone out).
    public func effectiveMaxConnections(descriptorLimit: UInt64) -> Int {
        let reserve = UInt64(Self.reservedDescriptors)
        let room = descriptorLimit > reserve * 2 ? descriptorLimit - reserve : descriptorLimit / 2
        return Int(min(UInt64(max(1, maxConnections)), max(1, room)))
    }

    /// The configuration-file keys these settings use.
    public static let fileKeys: Set<String> = [
        "header_timeout", "idle_timeout", "body_timeout", "min_body_rate", "send_timeout", "min_send_rate", "max_connections",
        "max_request_bytes_in_flight",
    ]

    /// Applies the settings present in `file` on top of `self`.
    public mutating func apply(_ file: ConfigurationFile) throws {
        func positive(_ key: String) throws -> TimeAmount? {
            guard let value = try file.duration(key) else { return nil }
            guard value > .zero else { throw file.problem(key, "'\(key)' must be longer than 0") }
            return value
        }
        func atLeastOne(_ key: String) throws -> Int? {
            guard let value = try file.int(key) else { return nil }
            guard value >= 1 else { throw file.problem(key, "'\(key)' must be at least 1") }
            return value
        }
        if let value = try positive("header_timeout") { headerTimeout = value }
        if let value = try positive("idle_timeout") { idleTimeout = value }
        if let value = try positive("body_timeout") { bodyTimeout = value }
        if let value = try atLeastOne("min_body_rate") { minBodyBytesPerSecond = value }
        if let value = try positive("send_timeout") { sendTimeout = value }
        if let value = try atLeastOne("min_send_rate") { minSendBytesPerSecond = value }
        if let value = try atLeastOne("max_connections") { maxConnections = value }
        if let value = try atLeastOne("max_request_bytes_in_flight") { maxRequestBytesInFlight = value }
    }
}
