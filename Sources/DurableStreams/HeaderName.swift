/// The protocol's header names, spelled once.
public enum HeaderName {
    public static let nextOffset = "Stream-Next-Offset"
    public static let cursor = "Stream-Cursor"
    public static let upToDate = "Stream-Up-To-Date"
    public static let closed = "Stream-Closed"
    public static let seq = "Stream-Seq"
    public static let ttl = "Stream-TTL"
    public static let expiresAt = "Stream-Expires-At"
    public static let sseDataEncoding = "stream-sse-data-encoding"
    public static let producerID = "Producer-Id"
    public static let producerEpoch = "Producer-Epoch"
    public static let producerSeq = "Producer-Seq"
    public static let producerExpectedSeq = "Producer-Expected-Seq"
    public static let producerReceivedSeq = "Producer-Received-Seq"

    /// Every header a browser client must be allowed to read (CORS `Access-Control-Expose-Headers`).
    public static let exposedToBrowsers = [
        nextOffset, cursor, upToDate, closed, ttl, expiresAt, sseDataEncoding,
        producerEpoch, producerSeq, producerExpectedSeq, producerReceivedSeq,
        "ETag", "Location", "Content-Type", "WWW-Authenticate",
    ]

    /// Every request header a browser client may send (CORS `Access-Control-Allow-Headers`).
    public static let acceptedFromBrowsers = [
        "Content-Type", "Authorization", "If-None-Match", seq, ttl, expiresAt, closed,
        producerID, producerEpoch, producerSeq,
    ]

    /// `Stream-Closed` counts only when its value is `true`, compared case-insensitively;
    /// any other value is treated as if the header were absent.
    public static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return equalIgnoringCase(value, "true")
    }

    /// Whether two header names are equal ignoring ASCII case (RFC 9110 §5.1), compared byte by
    /// byte without making lowercased copies.
    public static func equalIgnoringCase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
