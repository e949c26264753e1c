import NIOCore
import OriginServer
import ServerSupport
import Testing

@Suite("Configuration files")
struct ConfigurationFileTests {
    @Test func appliesSettings() throws {
        let file = try ConfigurationFile(text: """
            host = "0.0.0.0"
            port = 9000
            long_poll_timeout = "5s"
            sse_reconnect_interval = "2m"
            cursor_interval = "10s"
            max_chunk_bytes = 1024
            compression = false
            """, path: "test.conf")
        var configuration = OriginConfiguration()
        try configuration.apply(file)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9000)
        #expect(configuration.longPollTimeout == .seconds(5))
        #expect(configuration.sseReconnectInterval == .seconds(120))
        #expect(configuration.cursorIntervalSeconds == 10)
        #expect(configuration.maxChunkBytes == 1024)
        #expect(configuration.compression == false)
    }

    @Test func syntaxErrorNamesTheLine() {
        #expect(throws: ConfigurationFile.Problem.self) { try ConfigurationFile(text: "port = 1\nhost = \n", path: "bad.conf") }
        do {
            _ = try ConfigurationFile(text: "port = 1\nhost = \n", path: "bad.conf")
        } catch {
            #expect("\(error)".hasPrefix("bad.conf:2:"))
        }
    }

    /// toml++ (in TOMLKit) asserts a table header's key starts with a key character: `[/` aborted
    /// the process (found by the `originconf` fuzz target). Such files are refused up front.
    @Test(arguments: ["[/", "port = 1\r\n[/]\r\n", "[ \u{e9}]", "[[ [x]]", "\u{FEFF}[", "[\nport = 1", "  [\t#x]"])
    func malformedTableHeaderIsAProblem(text: String) {
        do {
            _ = try ConfigurationFile(text: text, path: "bad.conf")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error is ConfigurationFile.Problem)
            #expect("\(error)".hasPrefix("bad.conf:"))
        }
    }

    /// toml++ asserts that a time follows a date's `T` (found by the `originconf` fuzz target;
    /// the input is kept in Tests/FuzzCorpus/originconf/).
    @Test(arguments: ["host = 1979-05-27Tmax_body_bytes07:0;:0;0Z", "port = 1\nx = 2024-01-01t", "a = [2024-01-01T]"])
    func dateWithoutTimeIsAProblem(text: String) {
        do {
            _ = try ConfigurationFile(text: text, path: "bad.conf")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error is ConfigurationFile.Problem)
            #expect("\(error)".contains("a date followed by 'T'"))
        }
    }

    /// The screen does not try to tell strings and comments apart (the fuzzer got past one
    /// that did, with a `"""` inside a comment): a line starting with `[/` is refused anywhere.
    @Test(arguments: ["host = \"\"\"\n[/x]\"\"\"\nport = 2\n", "# a \"\"\" in a comment\n[/\n"])
    func tableHeaderLookalikesAreRefusedEvenInStrings(text: String) {
        #expect(throws: ConfigurationFile.Problem.self) { try ConfigurationFile(text: text, path: "t.conf") }
    }

    @Test func tablesAreUnknownSettings() {
        #expect(throws: ConfigurationFile.Problem.self) { try ConfigurationFile(text: "[server]\n", path: "t.conf").rejectUnknownKeys([]) }
    }

    @Test func wrongTypesAndUnknownKeysNameTheLine() throws {
        var configuration = OriginConfiguration()
        let wrongType = try ConfigurationFile(text: "# comment\nport = \"x\"\n", path: "o.conf")
        #expect(throws: ConfigurationFile.Problem.self) { try configuration.apply(wrongType) }
        do { try configuration.apply(wrongType) } catch { #expect("\(error)".hasPrefix("o.conf:2:")) }
        let unknown = try ConfigurationFile(text: "port = 1\n\nprot = 2\n", path: "o.conf")
        do {
            try configuration.apply(unknown)
            Issue.record("unknown key accepted")
        } catch {
            #expect("\(error)".hasPrefix("o.conf:3: unknown setting 'prot'"))
        }
        let badDuration = try ConfigurationFile(text: "long_poll_timeout = \"soon\"\n", path: "o.conf")
        #expect(throws: ConfigurationFile.Problem.self) { try configuration.apply(badDuration) }
    }

    @Test(arguments: [("500ms", Int64(500_000_000)), ("30s", 30_000_000_000), ("2m", 120_000_000_000), ("1h", 3_600_000_000_000)])
    func parsesDurations(text: String, nanos: Int64) {
        #expect(DurationText.parse(text)?.nanoseconds == nanos)
    }

    @Test(arguments: ["", "s", "10", "1.5s", "-1s", "10 s", "5d"])
    func rejectsBadDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }
}
