import DurableStreams
import Testing

@Suite("EntityTag format and If-None-Match matching")
struct EntityTagTests {
    let start = StreamOffset(position: 0)
    let end = StreamOffset(position: 5)

    @Test func openStreamTagIsQuotedIDStartEnd() {
        let tag = EntityTag.make(streamID: "abc-1", start: start, end: end, closed: false)
        #expect(tag == "\"abc-1:0000000000000000_0000000000000000:0000000000000000_0000000000000005\"")
    }

    @Test func closedStreamTagAppendsC() {
        let tag = EntityTag.make(streamID: "abc-1", start: start, end: end, closed: true)
        #expect(tag == "\"abc-1:0000000000000000_0000000000000000:0000000000000000_0000000000000005:c\"")
    }

    @Test func tagsDifferByEveryComponent() {
        let base = EntityTag.make(streamID: "s", start: start, end: end, closed: false)
        #expect(base != EntityTag.make(streamID: "t", start: start, end: end, closed: false))
        #expect(base != EntityTag.make(streamID: "s", start: end, end: end, closed: false))
        #expect(base != EntityTag.make(streamID: "s", start: start, end: StreamOffset(position: 6), closed: false))
        #expect(base != EntityTag.make(streamID: "s", start: start, end: end, closed: true))
    }

    @Test(arguments: [false, true])
    func tagIsAQuotedString(closed: Bool) {
        let tag = EntityTag.make(streamID: "x", start: start, end: end, closed: closed)
        #expect(tag.first == "\"")
        #expect(tag.last == "\"")
        #expect(tag.dropFirst().dropLast().contains("\"") == false)
        #expect(tag.hasSuffix(":c\"") == closed)
    }

    @Test func exactTagMatches() {
        let tag = EntityTag.make(streamID: "s", start: start, end: end, closed: false)
        #expect(EntityTag.ifNoneMatch(tag, matches: tag))
    }

    @Test func differentOrUnquotedTagsDoNotMatch() {
        let tag = EntityTag.make(streamID: "s", start: start, end: end, closed: false)
        #expect(!EntityTag.ifNoneMatch("\"wrong-etag\"", matches: tag))
        #expect(!EntityTag.ifNoneMatch(String(tag.dropFirst().dropLast()), matches: tag))
        #expect(!EntityTag.ifNoneMatch("", matches: tag))
        #expect(!EntityTag.ifNoneMatch(",", matches: tag))
    }

    @Test func closedTagDoesNotMatchOpenTagAndViceVersa() {
        let open = EntityTag.make(streamID: "s", start: start, end: end, closed: false)
        let closed = EntityTag.make(streamID: "s", start: start, end: end, closed: true)
        #expect(!EntityTag.ifNoneMatch(open, matches: closed))
        #expect(!EntityTag.ifNoneMatch(closed, matches: open))
    }

    /// A comma after a Unicode "prepend" character forms one grapheme cluster with it; the list
    /// must still split there (found by the `etag` fuzz target).
    @Test func listsSplitAtCommaBytesNotCharacters() {
        let tag = "\"s:1:2\""
        #expect("\u{06DD},".count == 1)
        #expect(EntityTag.ifNoneMatch("\"a\u{06DD}\", *", matches: tag))
        #expect(EntityTag.ifNoneMatch("x\u{06DD},\"s:1:2\"", matches: tag))
    }

    @Test func matchesAnyMemberOfAList() {
        let tag = "\"s:1:2\""
        #expect(EntityTag.ifNoneMatch("\"a\", \"s:1:2\"", matches: tag))
        #expect(EntityTag.ifNoneMatch("\"s:1:2\",\"b\"", matches: tag))
        #expect(EntityTag.ifNoneMatch("\"a\",\t \"s:1:2\" ,\"b\"", matches: tag))
        #expect(!EntityTag.ifNoneMatch("\"a\", \"b\", \"s:1:3\"", matches: tag))
    }

    @Test func weakTagsMatchTheirStrongCounterpart() {
        let tag = "\"s:1:2\""
        #expect(EntityTag.ifNoneMatch("W/\"s:1:2\"", matches: tag))
        #expect(EntityTag.ifNoneMatch("\"a\", W/\"s:1:2\"", matches: tag))
        #expect(!EntityTag.ifNoneMatch("W/\"s:1:3\"", matches: tag))
    }

    @Test func wildcardMatchesEverything() {
        #expect(EntityTag.ifNoneMatch("*", matches: "\"anything\""))
        #expect(EntityTag.ifNoneMatch(" * ", matches: "\"anything\""))
        #expect(EntityTag.ifNoneMatch("\"a\", *", matches: "\"anything\""))
    }

    @Test func surroundingWhitespaceIsIgnored() {
        #expect(EntityTag.ifNoneMatch("  \"s:1:2\"\t", matches: "\"s:1:2\""))
    }
}
