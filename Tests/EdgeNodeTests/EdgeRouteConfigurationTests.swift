@testable import EdgeNode
import NIOCore
import ServerSupport
import Testing

/// `[[route]]` tables in edge.conf, and which route a path belongs to.
@Suite("edge.conf: [[route]]")
struct EdgeRouteConfigurationTests {
    private func apply(_ text: String) throws -> EdgeConfiguration {
        var configuration = EdgeConfiguration()
        try configuration.apply(ConfigurationFile(text: text, path: "edge.conf"))
        return configuration
    }

    @Test func routesParseWithDefaultsAndEveryKey() throws {
        let configuration = try apply("""
            listen = "127.0.0.1:4438"
            route_cache_budget_bytes = 1000

            [[route]]
            path_prefix = "/api/"
            upstream = "http://127.0.0.1:9000"

            [[route]]  # the other one
            path_prefix = "/assets/"
            upstream = "http://[::1]:9001/"
            max_connections = 4
            timeout = "5s"
            max_response_bytes = 1024
            """)
        #expect(configuration.routeCacheBudgetBytes == 1000)
        #expect(configuration.routes.count == 2)
        let api = configuration.routes[0]
        #expect(api.pathPrefix == "/api/" && api.upstreamHost == "127.0.0.1" && api.upstreamPort == 9000)
        #expect(api.maxConnections == 64 && api.timeout == .seconds(30) && api.maxResponseBytes == 8 << 20)
        let assets = configuration.routes[1]
        #expect(assets.pathPrefix == "/assets/" && assets.upstreamHost == "::1" && assets.upstreamPort == 9001)
        #expect(assets.maxConnections == 4 && assets.timeout == .seconds(5) && assets.maxResponseBytes == 1024)
    }

    @Test func anHTTPSRouteVerifiesByDefault() throws {
        let configuration = try apply("""
            [[route]]
            path_prefix = "/api/"
            upstream = "https://app.internal:443"

            [[route]]
            path_prefix = "/files/"
            upstream = "https://10.0.0.5:8443"
            ca_file = "/etc/ds/ca.pem"
            server_name = "files.internal"
            tls_verify = false

            [[route]]
            path_prefix = "/plain/"
            upstream = "http://127.0.0.1:9000"
            """)
        #expect(configuration.routes[0].upstreamTLS == UpstreamTLSSettings())
        #expect(configuration.routes[1].upstreamTLS == UpstreamTLSSettings(caFile: "/etc/ds/ca.pem", verify: false, serverName: "files.internal"))
        #expect(configuration.routes[2].upstreamTLS == nil)
    }

    @Test func noRoutesByDefault() throws {
        #expect(try apply("listen = \"127.0.0.1:4438\"\n").routes.isEmpty)
        #expect(EdgeConfiguration().routeCacheBudgetBytes == 16 << 20)
    }

    /// Each bad route names the line to fix and says what is wrong.
    @Test(arguments: [
        ("[[route]]\nupstream = \"http://127.0.0.1:9000\"\n", 1, "needs 'path_prefix'"),
        ("[[route]]\npath_prefix = \"/api/\"\n", 1, "needs 'upstream'"),
        ("[[route]]\npath_prefix = \"api/\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "must start with /"),
        ("[[route]]\npath_prefix = \"/a b/\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "must be a URL path"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"ftp://127.0.0.1:9000\"\n", 3, "'upstream' must be an http:// or https:// URL"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1\"\n", 3, "'upstream' must be an http:// or https:// URL"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\nca_file = \"/ca.pem\"\n", 4, "'ca_file' applies only to an https:// upstream"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"https://127.0.0.1:9000\"\ntls_verify = \"no\"\n", 4, "'tls_verify' must be"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\nmax_connections = 0\n", 4, "must be positive"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\ntimeout = \"soon\"\n", 4, "must be a duration"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\ntimeout = \"0s\"\n", 4, "longer than 0"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\nmax_response_bytes = -1\n", 4, "must be positive"),
        ("[[route]]\npath_prefix = 5\nupstream = \"http://127.0.0.1:9000\"\n", 2, "'path_prefix' must be a string"),
        // Unknown keys, including a top-level setting written below a [[route]] header.
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\nweight = 2\n", 4, "unknown setting 'weight' in [[route]]"),
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\nlisten = \"0.0.0.0:1\"\n", 4, "top-level settings go before"),
        // Duplicates: named at the second one, which says where the first is.
        ("[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\n[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9001\"\n",
         5, "already used by the [[route]] at line 1"),
        // The edge's own paths.
        ("[[route]]\npath_prefix = \"/v1/stream/\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "lies under the stream path prefix"),
        ("[[route]]\npath_prefix = \"/v1/stream/x/\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "lies under the stream path prefix"),
        ("[[route]]\npath_prefix = \"/metrics\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "metrics_path /metrics"),
        ("[[route]]\npath_prefix = \"/metrics/x\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "metrics_path /metrics"),
        ("[[route]]\npath_prefix = \"/__edge/stats\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "stats_path /__edge/stats"),
        ("[[route]]\npath_prefix = \"/__edge/\"\nupstream = \"http://127.0.0.1:9000\"\n", 2, "dashboard_path /__edge/"),
        ("metrics_path = \"/ops/metrics\"\n[[route]]\npath_prefix = \"/ops/metrics\"\nupstream = \"http://127.0.0.1:9000\"\n", 3, "metrics_path /ops/metrics"),
        // `route` is only ever an array of tables.
        ("route = \"/api/\"\n", 1, "must be written as [[route]] tables"),
        ("[route]\npath_prefix = \"/api/\"\n", 1, "[[name]]"),
    ])
    func badRoutesNameTheLine(text: String, line: Int, message: String) throws {
        do {
            _ = try apply(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error is ConfigurationFile.Problem)
            #expect("\(error)".hasPrefix("edge.conf:\(line): "), "\(error)")
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func atMost64Routes() throws {
        func file(_ count: Int) -> String {
            (0..<count).map { "[[route]]\npath_prefix = \"/r\($0)/\"\nupstream = \"http://127.0.0.1:9000\"\n" }.joined()
        }
        #expect(try apply(file(64)).routes.count == 64)
        do {
            _ = try apply(file(65))
            Issue.record("65 routes accepted")
        } catch {
            // The 65th header is on line 64 * 3 + 1.
            #expect("\(error)" == "edge.conf:193: at most 64 [[route]] tables")
        }
    }

    /// Routes above the edge's own paths are allowed: those keep priority (see `RouteTable`).
    @Test func routesAboveTheEdgesOwnPathsAreAllowed() throws {
        let configuration = try apply("[[route]]\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:9000\"\n"
            + "[[route]]\npath_prefix = \"/v1/\"\nupstream = \"http://127.0.0.1:9001\"\n")
        #expect(configuration.routes.map(\.pathPrefix) == ["/", "/v1/"])
    }

    /// SIGHUP reports settings that need a restart by `changedKeys`; routes are one of them.
    @Test func changedRoutesAreReportedAsOneSetting() throws {
        let before = try ConfigurationFile(text: "listen = \"127.0.0.1:1\"\n[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9000\"\n", path: "edge.conf")
        let same = try ConfigurationFile(text: "listen = \"127.0.0.1:1\"\n\n[[route]]\nupstream = \"http://127.0.0.1:9000\"\npath_prefix = \"/api/\"\n", path: "edge.conf")
        let moved = try ConfigurationFile(text: "listen = \"127.0.0.1:1\"\n[[route]]\npath_prefix = \"/api/\"\nupstream = \"http://127.0.0.1:9001\"\n", path: "edge.conf")
        let none = try ConfigurationFile(text: "listen = \"127.0.0.1:1\"\n", path: "edge.conf")
        #expect(same.changedKeys(from: before) == [])
        #expect(moved.changedKeys(from: before) == ["route"])
        #expect(none.changedKeys(from: before) == ["route"])
    }

    // MARK: Matching

    @Test func theLongestPrefixWins() {
        let table = RouteTable([("/api/", "api"), ("/api/v2/", "v2"), ("/", "root"), ("/static", "static")], streamPathPrefix: "/v1/stream/")
        #expect(table.target(forURI: "/api/users?x=1") == "api")
        #expect(table.target(forURI: "/api/v2/users") == "v2")
        #expect(table.target(forURI: "/api/v2") == "api")
        #expect(table.target(forURI: "/staticfile.css") == "static")
        #expect(table.target(forURI: "/other") == "root")
        #expect(table.target(forURI: "/api") == "root")
        // The query is not part of the path.
        #expect(table.target(forURI: "/x?/api/") == "root")
    }

    @Test func streamsAreNeverRouted() {
        let table = RouteTable([("/", "root"), ("/v1/", "v1")], streamPathPrefix: "/v1/stream/")
        #expect(table.target(forURI: "/v1/stream/a") == nil)
        #expect(table.target(forURI: "/v1/stream/") == nil)
        #expect(table.target(forURI: "/v1/streams") == "v1")
        #expect(table.target(forURI: "/v1/other") == "v1")
    }

    @Test func prefixesMatchAsWritten() {
        let table = RouteTable([("/api/", "api")], streamPathPrefix: "/v1/stream/")
        // Byte for byte: neither case nor percent-encoding is folded.
        #expect(table.target(forURI: "/API/x") == nil)
        #expect(table.target(forURI: "/%61pi/x") == nil)
        #expect(table.target(forURI: "") == nil)
        #expect(RouteTable<String>([], streamPathPrefix: "/v1/stream/").target(forURI: "/api/") == nil)
    }
}
