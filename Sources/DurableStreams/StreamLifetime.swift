import Foundation

/// How long a stream lives (§5.1): a sliding TTL that reads and writes renew, or an absolute
/// expiry time. A stream has at most one of them.
public enum StreamLifetime: Hashable, Sendable {
    case unlimited
    /// Expires after this many seconds without a read or write.
    case ttl(seconds: UInt64)
    /// Expires at this instant (seconds since 1970); `text` is the value the creator sent.
    case expiresAt(seconds: Double, text: String)

    /// Parses the `Stream-TTL` and `Stream-Expires-At` request headers.
    /// Both at once is a 400: we do not pick a precedence.
    public init(ttlHeader: String?, expiresAtHeader: String?) throws(ProtocolError) {
        switch (ttlHeader, expiresAtHeader) {
        case (nil, nil):
            self = .unlimited
        case (.some, .some):
            throw ProtocolError(.badRequest, "Stream-TTL and Stream-Expires-At are mutually exclusive")
        case (let ttl?, nil):
            guard let seconds = Self.parseTTL(ttl) else {
                throw ProtocolError(.badRequest, "Stream-TTL must be a non-negative decimal integer without sign, leading zeros or fraction")
            }
            self = .ttl(seconds: seconds)
        case (nil, let expires?):
            guard let instant = Self.parseRFC3339(expires) else {
                throw ProtocolError(.badRequest, "Stream-Expires-At must be an RFC 3339 timestamp")
            }
            self = .expiresAt(seconds: instant, text: expires.trimmingASCIIWhitespace())
        }
    }

    /// Strict `Stream-TTL`: `0` or digits without a leading zero; nothing else.
    public static func parseTTL(_ text: String) -> UInt64? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 19,
            bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            bytes.count == 1 || bytes[0] != UInt8(ascii: "0")
        else { return nil }
        return UInt64(text)
    }

    /// RFC 3339 date-time (`2025-01-01T00:00:00Z`, `…T00:00:00.123+02:00`) in seconds since 1970.
    public static func parseRFC3339(_ text: String) -> Double? {
        let value = text.trimmingASCIIWhitespace()
        // Foundation accepts some forms RFC 3339 does not (missing seconds, lowercase
        // separators on some platforms); the length floor and `T` check keep it strict.
        guard value.utf8.count >= 20, value.uppercased().contains("T") else { return nil }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: value) { return date.timeIntervalSince1970 }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: value)?.timeIntervalSince1970
    }

    /// The instant the stream expires, given when it was last read or written.
    public func expiry(lastAccess: Double) -> Double? {
        switch self {
        case .unlimited: return nil
        case .ttl(let seconds): return lastAccess + Double(seconds)
        case .expiresAt(let seconds, _): return seconds
        }
    }

    /// Whether reads and writes push the expiry forward.
    public var isSliding: Bool {
        if case .ttl = self { return true }
        return false
    }

    /// Response headers that describe this lifetime (HEAD, PUT).
    public var headers: [(String, String)] {
        switch self {
        case .unlimited: return []
        case .ttl(let seconds): return [(HeaderName.ttl, String(seconds))]
        case .expiresAt(_, let text): return [(HeaderName.expiresAt, text)]
        }
    }

    /// Two lifetimes match for idempotent PUT when they are the same kind with the same value.
    public func matches(_ other: StreamLifetime) -> Bool {
        switch (self, other) {
        case (.unlimited, .unlimited): return true
        case (.ttl(let a), .ttl(let b)): return a == b
        case (.expiresAt(let a, _), .expiresAt(let b, _)): return a == b
        default: return false
        }
    }
}
