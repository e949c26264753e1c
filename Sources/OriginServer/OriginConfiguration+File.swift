import NIOCore
import ServerSupport
import StreamAuth

extension OriginConfiguration {
    /// Settings a configuration file may hold; the storage keys (`data_dir`, `fsync`,
    /// `max_file_handles`) are read by the command line, which opens the store.
    public static let fileKeys: Set<String> = Set<String>([
        "host", "port", "long_poll_timeout", "sse_reconnect_interval", "cursor_interval", "max_chunk_bytes",
        "max_body_bytes", "compression", "compression_threshold_bytes", "data_dir",
        "fsync", "max_file_handles", "access_log", "subscriptions", "public_url", "webhook_ca_file",
    ])
        .union(ConnectionLimits.fileKeys)
        .union(AuthSettings.fileKeys)
        .union(TLSSettings.keys)

    /// Applies the settings present in `file` on top of `self`.
    public mutating func apply(_ file: ConfigurationFile) throws {
        try file.rejectUnknownKeys(Self.fileKeys)
        if let value = try file.string("host") { host = value }
        if let value = try file.int("port") {
            guard (0...65535).contains(value) else { throw file.problem("port", "'port' must be between 0 and 65535") }
            port = value
        }
        if let value = try file.duration("long_poll_timeout") { longPollTimeout = value }
        if let value = try file.duration("sse_reconnect_interval") { sseReconnectInterval = value }
        if let value = try file.duration("cursor_interval") {
            guard value.nanoseconds >= 1_000_000_000 else { throw file.problem("cursor_interval", "'cursor_interval' must be at least 1s") }
            cursorIntervalSeconds = Double(value.nanoseconds) / 1e9
        }
        if let value = try file.int("max_chunk_bytes") {
            guard value > 0 else { throw file.problem("max_chunk_bytes", "'max_chunk_bytes' must be positive") }
            maxChunkBytes = value
        }
        if let value = try file.int("max_body_bytes") {
            guard value > 0 else { throw file.problem("max_body_bytes", "'max_body_bytes' must be positive") }
            maxBodyBytes = value
        }
        if let value = try file.bool("compression") { compression = value }
        if let value = try file.int("compression_threshold_bytes") { compressionThresholdBytes = max(0, value) }
        if let value = try file.string("access_log") { accessLog = value }
        if let value = try file.bool("subscriptions") { subscriptions = value }
        if let value = try file.string("public_url") {
            guard value.hasPrefix("http://") || value.hasPrefix("https://") else {
                throw file.problem("public_url", "'public_url' must be an http:// or https:// URL")
            }
            publicURL = value
        }
        if let value = try file.string("webhook_ca_file") { webhookCAFile = value }
        try limits.apply(file)
        try auth.apply(file)
        tls = try TLSSettings.read(from: file)
    }
}
