import Testing
@testable import StreamAuth

@Suite("API key file")
struct APIKeysTests {
    @Test func keysAreFoundByTheirDigestWithTheirScopes() throws {
        let digest = APIKeys.digest("reader-key-0123456789")
        let keys = try APIKeys(toml: """
            [[key]]
            name = "reader"
            sha256 = "\(digest)"
            scope = "read"
            prefixes = ["chat/", "news/"]

            [[key]]
            name = "ops"
            secret = "ops-secret-0123456789"
            scope = "admin"
            """)
        #expect(keys.count == 2)
        let reader = try #require(keys.principal(forKey: "reader-key-0123456789"))
        #expect(reader.name == "reader")
        #expect(reader.grants == [Grant(.read, prefix: "chat/"), Grant(.read, prefix: "news/")])
        #expect(keys.principal(forKey: "ops-secret-0123456789")?.grants == [Grant(.admin)])
        #expect(keys.principal(forKey: "reader-key-012345678") == nil)
    }

    @Test func digestIsSHA256InHex() {
        // The digest `printf %s abc | sha256sum` prints.
        #expect(APIKeys.digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test(arguments: [
        ("", "no [[key]] tables"),
        ("[[key]]\nscope = \"read\"", "needs exactly one of sha256 or secret"),
        ("[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"owner\"", "needs scope"),
        ("[[key]]\nsecret = \"short\"\nscope = \"read\"", "at least 16 characters"),
        ("[[key]]\nsha256 = \"ABC\"\nscope = \"read\"", "64 lower-case hex digits"),
        ("[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"read\"\ncolour = 1", "unknown field 'colour'"),
        ("keys = 1", "unknown top-level key"),
        ("[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"read\"\n[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"write\"", "repeats another key"),
        ("[[key", "not valid TOML"),
        ("[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"read\"\nprefixes = []", "prefixes is empty"),
        ("[[key]]\nsecret = \"0123456789abcdef\"\nscope = \"read\"\nprefix = \"\"", "empty prefix"),
    ])
    func badFilesAreRefusedWithTheReason(text: String, reason: String) {
        #expect {
            try APIKeys(toml: text)
        } throws: { error in
            (error as? AuthConfigurationError)?.description.contains(reason) == true
        }
    }
}
