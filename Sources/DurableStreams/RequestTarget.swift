/// A request target (`/path?query`) cut at its first `?`.
///
/// Cut by byte, not by `Character`: a target is bytes (RFC 9112 §3.2), a grapheme search is many
/// times slower on every request, and the layers that each cut it (authorisation, the edge's
/// cache keys, the origin) must all cut it at the same place.
public struct RequestTarget: Sendable {
    /// Everything before the first `?`, as received (not decoded).
    public let path: Substring
    /// Everything after the first `?`; empty when there is none.
    public let query: Substring

    public init(_ uri: String) {
        guard let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else {
            path = uri[...]
            query = uri[uri.endIndex...]
            return
        }
        path = uri[..<mark]
        query = uri[uri.utf8.index(after: mark)...]
    }
}
