/// A stream's content type, compared by its media type alone (`type/subtype`, case-insensitive),
/// so `application/json; charset=utf-8` matches `application/json`.
public struct ContentType: Hashable, Sendable, CustomStringConvertible {
    /// The header value as the stream's creator sent it.
    public let headerValue: String
    /// Lowercased `type/subtype` without parameters.
    public let mediaType: String

    /// The type a stream gets when its creator names none.
    public static let octetStream = ContentType("application/octet-stream")!

    /// `nil` when the value is not of the form `type/subtype[; params]`.
    public init?(_ headerValue: String) {
        let trimmed = headerValue.trimmingASCIIWhitespace()
        let essence = trimmed.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .trimmingASCIIWhitespace().lowercased()
        let parts = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
            essence.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        self.headerValue = trimmed
        self.mediaType = essence
    }

    /// JSON mode (§9.1): message boundaries preserved, reads return arrays.
    public var isJSON: Bool { mediaType == "application/json" }

    /// Whether SSE data events can carry the bytes as text; all other types are base64-encoded.
    public var isTextual: Bool { isJSON || mediaType.hasPrefix("text/") }

    public var description: String { headerValue }

    public static func == (lhs: ContentType, rhs: ContentType) -> Bool { lhs.mediaType == rhs.mediaType }
    public func hash(into hasher: inout Hasher) { hasher.combine(mediaType) }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    func trimmingASCIIWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
