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

    /// Settings files are one `key = value` per line with plain values; anything else is refused
    /// with its line before TOMLKit, whose parser aborted the process on several malformed
    /// files (found by the fuzz targets; the inputs are kept in Tests/FuzzCorpus/).
    @Test(arguments: [
        ("host = 1979-05-27Tmax_body_bytes07:0;:0;0Z", 1), ("port = 1\nx = 2024-01-01t", 2), ("a = [2024-01-01T]", 1),
        ("oorthos= 1979-05-=7 2.5Z", 1), ("a.b = 1", 1), ("\"a\" = 1", 1), ("a = \"\"\"x\"\"\"", 1), ("a = { b = 1 }", 1),
        ("a = \"x\" y", 1), ("a = 1_", 1), ("a = \"\\q\"", 1), ("a = tru", 1), ("= 1", 1),
    ])
    func valuesOutsideThePlainSubsetAreProblems(text: String, line: Int) {
        do {
            _ = try ConfigurationFile(text: text, path: "bad.conf")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error is ConfigurationFile.Problem)
            #expect("\(error)".hasPrefix("bad.conf:\(line):"), "\(error)")
        }
    }

    @Test func thePlainSubsetIsAccepted() throws {
        let file = try ConfigurationFile(text: """
            \u{FEFF}# comment\r
              host = "a \\"b\\" \\u00e9"   # trailing comment
            port=4437
            ratio = -2.5e3
            big = 1_000
            flag = false\t
            name = 'literal \\ text'
            """, path: "ok.conf")
        #expect(try file.string("host") == "a \"b\" \u{e9}")
        #expect(try file.int("port") == 4437)
        #expect(try file.number("ratio") == -2500)
        #expect(try file.int("big") == 1000)
        #expect(try file.bool("flag") == false)
        #expect(try file.string("name") == "literal \\ text")
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
