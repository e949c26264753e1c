/// A position in a stream: the number of stored bytes that precede it.
///
/// On the wire an offset is a fixed-width, zero-padded decimal string, so byte-wise
/// lexicographic order equals numeric order, as the protocol requires. Twenty digits hold
/// any `UInt64`, and the form never collides with the sentinels `-1` and `now`.
public struct StreamOffset: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Width of the wire form.
    public static let width = 20

    /// Bytes of the stream's stored log before this position.
    public var position: UInt64

    /// The first position of every stream.
    public static let zero = StreamOffset(position: 0)

    public init(position: UInt64) {
        self.position = position
    }

    /// Parses the wire form; `nil` unless it is exactly `width` ASCII digits.
    public init?(_ text: Substring) {
        guard text.utf8.count == Self.width else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        self.position = value
    }

    public init?(_ text: String) {
        self.init(Substring(text))
    }

    public var description: String {
        // Hand-rolled padding: this runs on every response and String(format:) is slow.
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: Self.width)
        var value = position
        var index = Self.width - 1
        while value > 0 {
            digits[index] = UInt8(ascii: "0") + UInt8(value % 10)
            value /= 10
            index -= 1
        }
        return String(decoding: digits, as: UTF8.self)
    }

    public static func < (lhs: StreamOffset, rhs: StreamOffset) -> Bool {
        lhs.position < rhs.position
    }
}

/// Where a read starts, as a client asked for it.
public enum ReadStart: Hashable, Sendable {
    /// `offset=-1` or no offset: the beginning of the stream.
    case beginning
    /// `offset=now`: the current tail.
    case now
    /// A concrete offset the server handed out earlier.
    case offset(StreamOffset)

    /// Parses the `offset` query parameter (absent means the beginning).
    public init(queryValue: Substring?) throws(ProtocolError) {
        guard let value = queryValue else {
            self = .beginning
            return
        }
        switch value {
        case "-1": self = .beginning
        case "now": self = .now
        default:
            guard let offset = StreamOffset(value) else {
                throw ProtocolError(.badRequest, "malformed offset: expected -1, now, or an offset returned by this server")
            }
            self = .offset(offset)
        }
    }
}
