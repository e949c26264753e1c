import DurableStreams
import Testing

@Suite("Stream name validation")
struct StreamPathTests {
    @Test(arguments: [
        ("a", "a"), ("events/sync-1", "events/sync-1"), ("a/b/c", "a/b/c"), ("a%20b", "a b"), ("%41", "A"),
        ("a+b", "a+b"), ("a%2Bb", "a+b"), ("a%2Fb", "a/b"), ("...", "..."), ("a..b", "a..b"), (".hidden", ".hidden"),
        ("..a", "..a"), ("caf%C3%A9", "café"), ("__health__", "__health__"),
    ])
    func validNamesAreDecoded(raw: String, decoded: String) throws {
        #expect(try StreamPath.validate(Substring(raw)) == decoded)
    }

    @Test func emptyNameIsABadRequest() {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate("") }
        #expect(error?.status == .badRequest)
    }

    @Test func lengthLimit() throws {
        let longest = String(repeating: "a", count: StreamPath.maxLength)
        #expect(try StreamPath.validate(Substring(longest)) == longest)
        let tooLong = String(repeating: "a", count: StreamPath.maxLength + 1)
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate(Substring(tooLong)) }
        #expect(error?.status == .badRequest)
    }

    @Test func lengthIsMeasuredInBytes() {
        // 513 two-byte characters: 513 characters, 1026 bytes.
        let name = String(repeating: "é", count: 513)
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate(Substring(name)) }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: [
        ".", "..", "a/..", "../a", "a/../b", "a/./b", "./a", "a/.", "a//b", "/a", "a/", "/",
        "%2e", "%2E%2E", "%2e%2e/a", "a/%2e%2e/b", "a%2F..%2Fb", "a%2F%2Fb", "a%2F", ".%2e",
    ])
    func traversalAndEmptySegmentsAreRejected(name: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate(Substring(name)) }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["a%00b", "a%0Ab", "a%0D", "%7F", "a%1Fb", "a\u{7}b", "tab\there"])
    func controlCharactersAreRejected(name: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate(Substring(name)) }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["%", "a%2", "%zz", "a%G1b", "%FF", "%C3"])
    func malformedPercentEncodingIsRejected(name: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.validate(Substring(name)) }
        #expect(error?.status == .badRequest)
    }
}
