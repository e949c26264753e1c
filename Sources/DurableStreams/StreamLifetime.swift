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
    ///
    /// Foundation's ISO 8601 formatter is too lenient to be the judge (on Linux it ignores
    /// trailing text, rolls 30 February over into March, and takes `+0200`), so the grammar of
    /// RFC 3339 §5.6 is checked field by field and the instant computed from the fields.
    public static func parseRFC3339(_ text: String) -> Double? {
        let bytes = Array(text.trimmingASCIIWhitespace().utf8)
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + count)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }
        func expect(_ allowed: UInt8...) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2), expect(UInt8(ascii: "T"), UInt8(ascii: "t")),
            let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
            let second = digits(2)
        else { return nil }
        var fraction = 0.0
        if expect(UInt8(ascii: ".")) {
            let start = index
            var scale = 0.1
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offsetSeconds = 0
        if !expect(UInt8(ascii: "Z"), UInt8(ascii: "z")) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") else { return nil }
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let offsetHour = digits(2), expect(UInt8(ascii: ":")), let offsetMinute = digits(2),
                offsetHour <= 23, offsetMinute <= 59
            else { return nil }
            offsetSeconds = sign * (offsetHour * 3600 + offsetMinute * 60)
        }
        guard index == bytes.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60  // 60: a leap second
        else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Double(seconds) + fraction
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
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

    /// A fork's lifetime (§4.2): the one it asked for, or else its source's, so that a fork of
    /// a stream with a TTL or a deadline is never kept forever by accident.
    public static func forFork(requested: StreamLifetime, source: StreamLifetime) -> StreamLifetime {
        if case .unlimited = requested { return source }
        return requested
    }
}
