import EdgeNode
import NIOCore
import ServerSupport
import Testing

@Suite("edge.conf")
struct EdgeConfigurationTests {
    @Test func theShippedEdgeConfParses() throws {
        let path = #filePath.components(separatedBy: "/Tests/")[0] + "/edge.conf"
        var configuration = EdgeConfiguration()
        try configuration.apply(ConfigurationFile(path: path))
        #expect(configuration.port == 4438)
        #expect(configuration.upstreamPort == 4437)
        #expect(configuration.credentials == .partition)
        #expect(!configuration.trustForwardedHost)
    }

    @Test func appliesEverySetting() throws {
        let file = try ConfigurationFile(text: """
            listen = "0.0.0.0:9000"
            upstream = "http://10.1.2.3:4437/"
            cache_budget_bytes = 1000
            upstream_max_connections = 3
            upstream_timeout = "2s"
            upstream_long_poll_timeout = "45s"
            sse_reconnect_interval = "30s"
            stale_while_revalidate = "1m"
            stale_if_error = "1h"
            credentials = "bypass"
            dashboard_path = "/dash"
            trust_forwarded_host = true
            """, path: "edge.conf")
        var configuration = EdgeConfiguration()
        try configuration.apply(file)
        #expect(configuration.host == "0.0.0.0" && configuration.port == 9000)
        #expect(configuration.upstreamHost == "10.1.2.3" && configuration.upstreamPort == 4437)
        #expect(configuration.cacheBudgetBytes == 1000)
        #expect(configuration.upstreamMaxConnections == 3)
        #expect(configuration.upstreamLongPollTimeout == .seconds(45))
        #expect(configuration.staleIfError == .seconds(3600))
        #expect(configuration.credentials == .bypass)
        #expect(configuration.dashboardPath == "/dash")
        #expect(configuration.trustForwardedHost)
    }

    @Test(arguments: [
        ("listen = \"nowhere\"\n", 1), ("\nupstream = \"ftp://x:1\"\n", 2), ("credentials = \"share\"\n", 1),
        ("cache_budget_bytes = -1\n", 1), ("trust_forwarded_host = \"yes\"\n", 1), ("\n\nlisten = 5\n", 3), ("colour = \"red\"\n", 1),
    ])
    func badSettingsNameTheLine(text: String, line: Int) throws {
        var configuration = EdgeConfiguration()
        do {
            try configuration.apply(ConfigurationFile(text: text, path: "edge.conf"))
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".hasPrefix("edge.conf:\(line):"))
        }
    }

    @Test func parsesAddresses() {
        #expect(EdgeConfiguration.parseHostPort("[::1]:80")! == ("::1", 80))
        #expect(EdgeConfiguration.parseHostPort("127.0.0.1:65536") == nil)
        #expect(EdgeConfiguration.parseUpstreamURL("http://127.0.0.1:4437")! == (false, "127.0.0.1", 4437))
        #expect(EdgeConfiguration.parseUpstreamURL("https://[::1]:4437/")! == (true, "::1", 4437))
        #expect(EdgeConfiguration.parseUpstreamURL("http://127.0.0.1:4437/v1") == nil)
        #expect(EdgeConfiguration.parseUpstreamURL("ftp://127.0.0.1:4437") == nil)
    }
}
