/// Entity tags for reads (§10.1): `"<stream id>:<start>:<end>"`, with `:c` appended once the
/// stream is closed so that a closure is never hidden behind a `304 Not Modified`.
public enum EntityTag {
    /// The quoted ETag for a read of `[start, end)` of the stream with internal id `streamID`.
    public static func make(streamID: String, start: StreamOffset, end: StreamOffset, closed: Bool) -> String {
        "\"\(streamID):\(start):\(end)\(closed ? ":c" : "")\""
    }

    /// Whether an `If-None-Match` header value names `etag` (a list, weak tags and `*` included).
    public static func ifNoneMatch(_ headerValue: String, matches etag: String) -> Bool {
        for candidate in headerValue.split(separator: ",") {
            var tag = Substring(candidate.trimmingASCIIWhitespace())
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            if tag == etag { return true }
        }
        return false
    }
}
