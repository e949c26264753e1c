/// The fork headers of a `PUT` (§4.2), checked for form: which stream to fork, where, and how
/// far past that offset. Whether the source exists and the position names data is the store's
/// question; everything a request can get wrong on its own is refused here with 400.
public struct ForkRequest: Equatable, Sendable {
    public static let sourceHeader = "Stream-Forked-From"
    public static let offsetHeader = "Stream-Fork-Offset"
    public static let subOffsetHeader = "Stream-Fork-Sub-Offset"

    /// The source stream's path on this server, as sent (`/v1/stream/…`).
    public var source: String
    /// Where the fork diverges; `nil` = the source's tail when the fork is made.
    public var offset: StreamOffset?
    /// Bytes (or, for JSON, messages) past `offset` that the fork also inherits; 0 = none.
    public var subOffset: UInt64

    /// The fork a request asks for: `nil` when it carries no fork headers.
    public init?(header: (String) -> String?) throws(ProtocolError) {
        let source = header(Self.sourceHeader)
        let offsetText = header(Self.offsetHeader)
        let subText = header(Self.subOffsetHeader)
        guard let source else {
            if offsetText != nil || subText != nil {
                throw ProtocolError(.badRequest, "\(Self.offsetHeader) and \(Self.subOffsetHeader) need \(Self.sourceHeader)")
            }
            return nil
        }
        guard Self.isPlausiblePath(source) else { throw ProtocolError(.badRequest, "malformed \(Self.sourceHeader)") }
        var offset: StreamOffset?
        if let offsetText {
            guard let parsed = StreamOffset(offsetText) else { throw ProtocolError(.badRequest, "malformed \(Self.offsetHeader)") }
            offset = parsed
        }
        var subOffset: UInt64 = 0
        if let subText {
            guard let parsed = Self.nonNegativeInteger(subText) else {
                throw ProtocolError(.badRequest, "\(Self.subOffsetHeader) must be a non-negative integer without sign or leading zeros")
            }
            subOffset = parsed
        }
        // Without an offset the fork starts at the source's tail, past which there is nothing.
        if offset == nil, subOffset > 0 {
            throw ProtocolError(.badRequest, "\(Self.subOffsetHeader) past the source's tail names no data; send \(Self.offsetHeader)")
        }
        self.source = source
        self.offset = offset
        self.subOffset = subOffset
    }

    /// An absolute path without traversal, query, fragment, or bytes outside printable ASCII;
    /// at most 1 KiB. Which stream it names is the server's routing to decide.
    static func isPlausiblePath(_ text: String) -> Bool {
        let bytes = text.utf8
        guard bytes.first == UInt8(ascii: "/"), bytes.count <= 1024 else { return false }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }) else { return false }
        return !text.split(separator: "/").contains { $0 == ".." || $0 == "." }
    }

    /// Decimal digits only, no leading zero (except `0` itself), within UInt64.
    static func nonNegativeInteger(_ text: String) -> UInt64? {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        if bytes.count > 1, bytes.first == UInt8(ascii: "0") { return nil }
        return UInt64(text)
    }
}
