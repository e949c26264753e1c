@testable import EdgeNode
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import TestSupport
import Testing

/// The fleet page: `durable-streams dashboard` and an edge's `peers`.
@Suite("Fleet dashboard")
struct FleetDashboardTests {
    private func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func onlyHistoryParametersGoToAMember() {
        #expect(FleetResponder.historyQuery("history=hour") == "history=hour")
        #expect(FleetResponder.historyQuery("since=1796000000&history=day") == "since=1796000000&history=day")
        #expect(FleetResponder.historyQuery("since=-1&history=week&x=../../etc") == "")
        #expect(FleetResponder.historyQuery("since=") == "")
        #expect(FleetResponder.historyQuery("since=" + String(repeating: "9", count: 40)) == "")
        #expect(FleetResponder.historyQuery("") == "")
    }

    @Test func peersAndTheFleetOriginAreCheckedWhenRead() throws {
        var configuration = EdgeConfiguration()
        try configuration.apply(ConfigurationFile(
            text: "peers = [\"http://10.0.0.2:4438\", \"https://edge-3.internal:443\"]\nfleet_origin = \"http://10.0.0.1:4437\"\n", path: "edge.conf"))
        #expect(configuration.peers == ["http://10.0.0.2:4438", "https://edge-3.internal:443"])
        #expect(configuration.fleetOrigin == "http://10.0.0.1:4437")
        #expect(configuration.fleetPath == "/__edge/fleet/")
        for (text, message) in [
            ("peers = \"http://10.0.0.2:4438\"\n", "'peers' must be a list of strings"),
            ("peers = [\"10.0.0.2:4438\"]\n", "'peers' must list http:// or https:// URLs"),
            ("peers = [1]\n", "a list of \"strings\""),
            ("fleet_origin = \"origin\"\n", "'fleet_origin' must be an http:// or https:// URL"),
        ] {
            var bad = EdgeConfiguration()
            do {
                try bad.apply(ConfigurationFile(text: text, path: "edge.conf"))
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    /// An edge with `peers` serves the fleet page; its own stats come from itself, a peer's
    /// through it, with nothing but the history parameters passed on.
    @Test func anEdgeWithPeersServesTheFleetPage() async throws {
        let peer = try await FakeUpstream.start { _ in
            FakeResponse(status: .ok, headers: [("Content-Type", "application/json")], body: #"{"clientRequestsTotal":42}"#)
        }
        defer { Task { await peer.stop() } }
        try await withEdges(edge: { $0.peers = ["http://127.0.0.1:\(peer.port)"] }) { edges in
            let page = try await edges.request(.GET, "/__edge/fleet/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(!page.text.contains("<script src") && !page.text.contains("https://") && !page.text.contains("http://"))
            let members = try #require(try json(try await edges.request(.GET, "/__edge/fleet/members"))["members"] as? [[String: Any]])
            #expect(members.map { $0["kind"] as? String } == ["edge", "edge"])
            #expect(members[1]["url"] as? String == "http://127.0.0.1:\(peer.port)")

            _ = try await edges.request(.PUT, "/v1/stream/f", headers: [("Content-Type", "text/plain")], body: "x")
            let own = try json(try await edges.request(.GET, "/__edge/fleet/member/0/stats"))
            #expect(own["clientRequestsTotal"] as? Int == 1)
            let theirs = try json(try await edges.request(.GET, "/__edge/fleet/member/1/stats?history=hour&next=http://elsewhere/"))
            #expect(theirs["clientRequestsTotal"] as? Int == 42)
            #expect(peer.requests.map(\.uri) == ["/__edge/stats?history=hour"])
            // The fleet's requests are the edge's own: the origin never sees them.
            #expect(edges.originRequests("other") == 0)
        }
    }

    /// `durable-streams dashboard`: the page at `/`, each member's stats through it, and a
    /// member that is down reported as such (502 with the reason), never a hang.
    @Test func theDashboardServerRelaysMembersAndReportsDownOnes() async throws {
        try await withEdges { edges in
            let down = try await FakeUpstream.start { _ in FakeResponse() }
            let downPort = down.port
            await down.stop()
            let members = [
                try #require(FleetMember(kind: .edge, url: "http://127.0.0.1:\(edges.port)")),
                try #require(FleetMember(kind: .edge, url: "http://127.0.0.1:\(downPort)")),
            ]
            let server = try FleetDashboardServer(host: "127.0.0.1", port: 0, members: members)
            try await server.start()
            do {
                let port = try #require(server.port)
                let page = try await TestHTTP.request(port: port, .GET, "/")
                #expect(page.status == 200 && page.text.contains("durable-streams fleet"))
                let stats = try await TestHTTP.request(port: port, .GET, "/member/0/stats?history=hour")
                #expect(stats.status == 200)
                #expect(try json(stats)["history"] != nil)
                let missing = try await TestHTTP.request(port: port, .GET, "/member/1/stats")
                #expect(missing.status == 502)
                #expect((try json(missing)["error"] as? String)?.contains("127.0.0.1:\(downPort)") == true)
                #expect(try await TestHTTP.request(port: port, .GET, "/member/2/stats").status == 404)
                #expect(try await TestHTTP.request(port: port, .GET, "/elsewhere").status == 404)
                #expect(try await TestHTTP.request(port: port, .POST, "/").status == 405)
            } catch {
                try await server.shutdown()
                throw error
            }
            try await server.shutdown()
        }
    }
}
