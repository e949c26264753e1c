/// A position in a stream: the number of stored bytes that precede it.
///
/// On the wire an offset is `<16 digits>_<16 digits>`: fixed-width and zero-padded, so
/// byte-wise lexicographic order equals numeric order, as the protocol requires, and the form
/// can never be mistaken for the sentinels `-1` and `now`. The first field is reserved for a
/// future log generation and is always zero today; the second is the byte position.
public struct StreamOffset: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Digits in each field of the wire form.
    public static let fieldWidth = 16
    /// The largest position the wire form holds.
    public static let maxPosition: UInt64 = 9_999_999_999_999_999

    /// Bytes of the stream's stored log before this position.
    public var position: UInt64

    /// The first position of every stream.
    public static let zero = StreamOffset(position: 0)

    public init(position: UInt64) {
        precondition(position <= Self.maxPosition, "stream offset out of range")
        self.position = position
    }

    /// Parses the wire form; `nil` unless it is exactly what `description` produces.
    public init?(_ text: Substring) {
        let utf8 = text.utf8
        guard utf8.count == 2 * Self.fieldWidth + 1 else { return nil }
        var generation: UInt64 = 0
        var value: UInt64 = 0
        for (index, byte) in utf8.enumerated() {
            if index == Self.fieldWidth {
                guard byte == UInt8(ascii: "_") else { return nil }
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = UInt64(byte - UInt8(ascii: "0"))
            if index < Self.fieldWidth {
                generation = generation * 10 + digit
            } else {
                value = value * 10 + digit
            }
        }
        guard generation == 0 else { return nil }
        self.position = value
    }

    public init?(_ text: String) {
        self.init(Substring(text))
    }

    public var description: String {
        // Hand-rolled padding: this runs on every response and String(format:) is slow.
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: 2 * Self.fieldWidth + 1)
        digits[Self.fieldWidth] = UInt8(ascii: "_")
        var value = position
        var index = digits.count - 1
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
