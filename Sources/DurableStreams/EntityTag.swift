/// Entity tags for reads (§10.1): `"<stream id>:<start>:<end>"`, with `:c` appended once the
/// stream is closed so that a closure is never hidden behind a `304 Not Modified`.
public enum EntityTag {
    /// The quoted ETag for a read of `[start, end)` of the stream with internal id `streamID`.
    public static func make(streamID: String, start: StreamOffset, end: StreamOffset, closed: Bool) -> String {
        "\"\(streamID):\(start):\(end)\(closed ? ":c" : "")\""
    }

    /// Whether an `If-None-Match` header value names `etag` (a list, weak tags and `*` included).
    ///
    /// The list is split at comma bytes, not at `Character`s: a comma right after a Unicode
    /// "prepend" character (U+06DD, say) joins it in one grapheme cluster, and a split by
    /// `Character` would miss that separator (found by the `etag` fuzz target).
    public static func ifNoneMatch(_ headerValue: String, matches etag: String) -> Bool {
        let wanted = Array(etag.utf8)
        for candidate in headerValue.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            var tag = candidate[...]
            while let first = tag.first, first == 0x20 || first == 0x09 { tag = tag.dropFirst() }
            while let last = tag.last, last == 0x20 || last == 0x09 { tag = tag.dropLast() }
            if tag.elementsEqual([UInt8(ascii: "*")]) { return true }
            if tag.starts(with: [UInt8(ascii: "W"), UInt8(ascii: "/")]) { tag = tag.dropFirst(2) }
            if tag.elementsEqual(wanted) { return true }
        }
        return false
    }
}
