import DurableStreams
import Testing

@Suite("RequestTarget: a target cut at its first ?")
struct RequestTargetTests {
    @Test(arguments: [
        ("/v1/stream/a?offset=-1", "/v1/stream/a", "offset=-1"),
        ("/v1/stream/a", "/v1/stream/a", ""),
        ("/v1/stream/a?", "/v1/stream/a", ""),
        ("/a?b=1?c=2", "/a", "b=1?c=2"),
        ("?offset=0", "", "offset=0"),
        ("", "", ""),
        // A mark followed by a combining accent is one Character, which a grapheme search for
        // "?" does not find; the target is cut at the byte all the same.
        ("/a?\u{301}b", "/a", "\u{301}b"),
    ])
    func cutsAtTheFirstMark(uri: String, path: String, query: String) {
        let target = RequestTarget(uri)
        #expect(target.path == path)
        #expect(target.query == query)
    }
}
