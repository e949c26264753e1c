import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport

/// The fleet dashboard: one page that shows several edges (and the origin) together. The page
/// fetches each member's stats through this responder (`{base}member/N/stats`), so the browser
/// talks to one host and needs no cross-origin access to the members; it sums what they report
/// itself. Only the configured members' stats paths can be reached: this is no open proxy.
final class FleetResponder: Sendable {
    /// Where the page lives; it ends with `/`, and the page's other paths hang under it.
    let basePath: String
    let members: [FleetMember]
    /// The member this server answers for itself, without a request (the edge serving the page).
    let localIndex: Int?
    private let clients: [UpstreamClient?]
    /// Bound on one member's answer: a member that does not answer is shown as down.
    static let timeout: TimeAmount = .seconds(3)

    init(basePath: String, members: [FleetMember], localIndex: Int? = nil, group: any EventLoopGroup) throws {
        self.basePath = basePath
        self.members = members
        self.localIndex = localIndex
        clients = try members.enumerated().map { index, member in
            if index == localIndex { return nil }
            return UpstreamClient(
                host: member.host, port: member.port, group: group, maxConnections: 2, maxQueued: 16,
                connectTimeout: .seconds(2), maxResponseBytes: 16 << 20,
                tls: try member.tls.map { try UpstreamTLS($0, host: member.host) })
        }
    }

    /// The paths this responder answers (for authorisation lists): the page, the member list
    /// and each member's stats.
    var paths: [String] {
        [basePath, basePath + "members"] + members.indices.map { basePath + "member/\($0)/stats" }
    }

    /// Answers `path` if it is one of the fleet's, nil otherwise. `localStats` makes the stats
    /// of the member at `localIndex` for a query.
    func respond(
        path: String, query: Substring, on loop: any EventLoop, localStats: ((Substring) -> [UInt8])? = nil
    ) -> EventLoopFuture<ServerReply>? {
        guard path.hasPrefix(basePath) else { return nil }
        let rest = path.dropFirst(basePath.count)
        if rest.isEmpty {
            return loop.makeSucceededFuture(EdgeService.local("text/html; charset=utf-8", Array(FleetDashboard.html.utf8)))
        }
        if rest == "members" {
            let list: [[String: Any]] = members.enumerated().map { index, member in
                ["index": index, "url": member.url, "kind": member.kind.rawValue, "stats": "member/\(index)/stats"]
            }
            let json = (try? JSONSerialization.data(withJSONObject: ["members": list], options: [.sortedKeys])) ?? Data()
            return loop.makeSucceededFuture(EdgeService.local("application/json", Array(json)))
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "member", parts[2] == "stats", let index = Int(parts[1]), members.indices.contains(index)
        else { return nil }
        // Only the history parameters go on: nothing a page could use to reach anything else.
        let forwarded = Self.historyQuery(query)
        if index == localIndex, let localStats {
            return loop.makeSucceededFuture(EdgeService.local("application/json", localStats(Substring(forwarded))))
        }
        guard let client = clients[index] else { return nil }
        let member = members[index]
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: member.statsPath + (forwarded.isEmpty ? "" : "?" + forwarded))
        head.headers.add(name: "Host", value: "\(member.host):\(member.port)")
        head.headers.add(name: "Accept", value: "application/json")
        return client.execute(head, body: nil, timeout: Self.timeout, on: loop).map { response -> ServerReply in
            guard response.head.status == .ok else {
                return Self.unavailable("\(member.url) answered \(response.head.status.code)")
            }
            return EdgeService.local("application/json", Array(buffer: response.body))
        }.recover { error in
            Self.unavailable("\(member.url) did not answer: \(error)")
        }
    }

    /// `history=hour|day` and `since=N` from `query`, in that form; everything else dropped.
    static func historyQuery(_ query: Substring) -> String {
        query.split(separator: "&").filter { pair in
            pair == "history=hour" || pair == "history=day"
                || (pair.hasPrefix("since=") && pair.count <= 26 && pair.dropFirst(6).allSatisfy(\.isNumber) && pair.count > 6)
        }.joined(separator: "&")
    }

    private static func unavailable(_ reason: String) -> ServerReply {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": reason])) ?? Data()
        var headers: HTTPHeaders = ["Content-Type": "application/json", "Content-Length": String(body.count), "Cache-Control": "no-store"]
        headers.add(contentsOf: BrowserHeaders.all)
        return .response(HTTPResponseHead(version: .http1_1, status: .badGateway, headers: headers), body: [ByteBuffer(bytes: body)])
    }

    func shutdown() async {
        for client in clients { await client?.shutdown() }
    }
}
