import NIOCore
import ServerSupport
import Testing

/// `[[name]]` arrays of tables in settings files (`ConfigurationFile.tables`).
@Suite("Configuration files: [[name]] tables")
struct ConfigurationTablesTests {
    static let text = """
        port = 1   # top level
        name = "top"

        [[route]]
        name = "first"
        port = 2
        ratio = 2.5
        on = true
        wait = "3s"

          [[ route ]]  # second
        name = "second"
        on = "yes"
        """

    @Test func tablesComeInFileOrderWithTypedGetters() throws {
        let file = try ConfigurationFile(text: Self.text, path: "t.conf")
        #expect(try file.int("port") == 1)
        #expect(try file.string("name") == "top")
        let routes = try file.tables("route")
        #expect(routes.count == 2)
        #expect(routes[0].name == "route")
        #expect(routes[0].keys == ["name", "on", "port", "ratio", "wait"])
        #expect(try routes[0].string("name") == "first")
        #expect(try routes[0].int("port") == 2)
        #expect(try routes[0].number("ratio") == 2.5)
        #expect(try routes[0].bool("on") == true)
        #expect(try routes[0].duration("wait") == .seconds(3))
        #expect(try routes[1].string("name") == "second")
        #expect(try routes[1].int("port") == nil)
        #expect(try file.tables("missing").isEmpty)
    }

    /// A problem in a table names the line inside that table, not a same-named key elsewhere.
    @Test func problemsNameTheLineInsideTheTable() throws {
        let file = try ConfigurationFile(text: Self.text, path: "t.conf")
        let routes = try file.tables("route")
        #expect(throws: ConfigurationFile.Problem.self) { try routes[1].bool("on") }
        do {
            _ = try routes[1].bool("on")
        } catch {
            #expect("\(error)" == "t.conf:13: 'on' must be true or false")
        }
        #expect(routes[0].problem("name", "x").description == "t.conf:5: x")
        #expect(routes[1].problem("name", "x").description == "t.conf:12: x")
        // A key the table does not set, and the table as a whole: its header.
        #expect(routes[1].problem("port", "x").description == "t.conf:11: x")
        #expect(routes[1].problem("x").description == "t.conf:11: x")
        // At the top level, only lines above the first header count.
        #expect(file.problem("name", "x").description == "t.conf:2: x")
        #expect(file.problem("route", "x").description == "t.conf:4: x")
    }

    @Test func unknownKeysAreRefusedPerTable() throws {
        let file = try ConfigurationFile(text: Self.text, path: "t.conf")
        try file.rejectUnknownKeys(["port", "name", "route"])
        do {
            try file.rejectUnknownKeys(["port", "name"])
            Issue.record("the route array was accepted as known")
        } catch {
            #expect("\(error)".hasPrefix("t.conf:4: unknown setting 'route'"))
        }
        let routes = try file.tables("route")
        try routes[0].rejectUnknownKeys(["name", "on", "port", "ratio", "wait"])
        do {
            try routes[0].rejectUnknownKeys(["name", "on", "port", "ratio"])
            Issue.record("an unknown key was accepted")
        } catch {
            #expect("\(error)".hasPrefix("t.conf:9: unknown setting 'wait' in [[route]]"))
        }
    }

    @Test func aPlainValueIsNotAnArrayOfTables() throws {
        let file = try ConfigurationFile(text: "\nroute = 3\n", path: "t.conf")
        #expect(throws: ConfigurationFile.Problem.self) { try file.tables("route") }
        do { _ = try file.tables("route") } catch { #expect("\(error)".hasPrefix("t.conf:2:")) }
    }

    /// Only `[[bare-name]]` headers get past the screen: toml++ asserts on some malformed ones.
    @Test(arguments: [
        "[route]\n", "[[route]\n", "[[route]] x\n", "[[a.b]]\n", "[[\"a\"]]\n", "[[]]\n", "[[ [x]]\n", "[[/]]\n", "[[route]]]\n",
    ])
    func otherHeadersAreRefused(text: String) {
        do {
            _ = try ConfigurationFile(text: text, path: "t.conf")
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".hasPrefix("t.conf:1:"), "\(error)")
        }
    }

    @Test(arguments: ["[[route]]\n", "  [[route]]\t# c\n", "[[ route ]]\r\n", "\u{FEFF}[[route-2_x]]\n"])
    func arrayTableHeadersAreAccepted(text: String) throws {
        _ = try ConfigurationFile(text: text, path: "t.conf")
    }

    /// TOML itself refuses a key set both ways; the problem names a line.
    @Test func aKeyThatIsAlsoATableIsAProblem() {
        #expect(throws: ConfigurationFile.Problem.self) { try ConfigurationFile(text: "route = 1\n[[route]]\n", path: "t.conf") }
    }
}
