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

@Suite("Canonical stream names and their URL paths")
struct CanonicalStreamNameTests {
    static let prefix = "/v1/stream/"

    @Test(arguments: [
        ("/v1/stream/a-b", "a-b"), ("/v1/stream/a%2Db", "a-b"), ("/v1/stream/a%2db", "a-b"), ("/v1/stream/%61-b", "a-b"),
        ("/v1/stream/a/b", "a/b"), ("/v1/stream/a%2Fb", "a/b"), ("/v1/stream/a%2fb", "a/b"),
        ("/v1/stream/caf%C3%A9", "café"), ("/v1/stream/café", "café"), ("/v1/stream/a+b", "a+b"), ("/v1/stream/a%20b", "a b"),
    ])
    func everySpellingGivesOneName(path: String, name: String) throws {
        #expect(try StreamPath.canonicalName(urlPath: Substring(path), prefix: Self.prefix) == name)
    }

    @Test(arguments: [
        "/v1/stream/", "/v1/stream/a%zz", "/v1/stream/a%2", "/v1/stream/%C3", "/v1/stream/a%00b", "/v1/stream/a%2F..%2Fb",
        "/v1/stream/a%2F%2Fb", "/v1/stream/..", "/v1/stream/a/",
    ])
    func invalidNamesAreBadRequests(path: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.canonicalName(urlPath: Substring(path), prefix: Self.prefix) }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["/v2/stream/a", "/v1/streams", "/v1/%73tream/a", ""])
    func pathsOutsideThePrefixAreNotStreams(path: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamPath.canonicalName(urlPath: Substring(path), prefix: Self.prefix) }
        #expect(error?.status == .notFound)
    }

    /// The origin's own check: a name is what `validate` makes of the part after the prefix.
    @Test(arguments: ["a", "a%2Db", "x/y%2Fz", "caf%C3%A9", "%7E~", "a+b%2B"])
    func agreesWithValidate(name: String) throws {
        #expect(try StreamPath.canonicalName(urlPath: Substring(Self.prefix + name), prefix: Self.prefix)
            == StreamPath.validate(Substring(name)))
    }

    @Test(arguments: [
        ("a-b", "/v1/stream/a-b"), ("a/b", "/v1/stream/a/b"), ("Az09-._~", "/v1/stream/Az09-._~"), ("a b", "/v1/stream/a%20b"),
        ("a+b", "/v1/stream/a%2Bb"), ("a%b", "/v1/stream/a%25b"), ("a?b#c", "/v1/stream/a%3Fb%23c"), ("café", "/v1/stream/caf%C3%A9"),
        ("日本", "/v1/stream/%E6%97%A5%E6%9C%AC"), ("a:b@c;d=e&f", "/v1/stream/a%3Ab%40c%3Bd%3De%26f"),
    ])
    func urlPathsEncodeAllButUnreservedAndSlash(name: String, path: String) {
        #expect(StreamPath.urlPath(forName: name, prefix: Self.prefix) == path)
    }

    @Test(arguments: ["a-b", "a/b/c", "café/日本", "a b+c%d", "a?b#c&d=e", "...", "..x/.y", "~user/x_y", "emoji 🎉", "a\\b\"c"])
    func roundTrip(name: String) throws {
        let path = StreamPath.urlPath(forName: name, prefix: Self.prefix)
        #expect(path.utf8.allSatisfy { $0 < 0x80 && $0 > 0x20 })  // plain ASCII, safe in a request line
        #expect(try StreamPath.canonicalName(urlPath: Substring(path), prefix: Self.prefix) == name)
    }

    /// An escaped slash is a separator once decoded: `a%2Fb` and `a/b` are one stream, and
    /// its path is rendered with a plain `/`.
    @Test func escapedSlashAndSlashAreOneStream() throws {
        let escaped = try StreamPath.canonicalName(urlPath: "/v1/stream/a%2Fb", prefix: Self.prefix)
        let plain = try StreamPath.canonicalName(urlPath: "/v1/stream/a/b", prefix: Self.prefix)
        #expect(escaped == plain)
        #expect(StreamPath.urlPath(forName: escaped, prefix: Self.prefix) == "/v1/stream/a/b")
    }
}
