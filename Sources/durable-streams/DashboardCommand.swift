import ArgumentParser
import EdgeNode
import ServerSupport

/// `durable-streams dashboard`: the fleet page for several edges (and the origin), served on
/// its own port.
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve one page that sums the stats of several edges (and shows the origin's load beside them).",
        discussion: """
            The page fetches each member's stats through this server every second (edges at \
            /__edge/stats, the origin at /__origin/stats), so the browser needs to reach this \
            server only. Example:
              durable-streams dashboard --listen 127.0.0.1:4440 --edge http://10.0.0.2:4438 \\
                  --edge http://10.0.0.3:4438 --origin http://10.0.0.1:4437
            """
    )

    @Option(help: "HOST:PORT to serve the page on.")
    var listen = "127.0.0.1:4440"

    @Option(name: .customLong("edge"), help: "An edge's base URL (http:// or https://, HOST:PORT); repeat for each edge.")
    var edges: [String] = []

    @Option(help: "The origin's base URL, for its own request rate beside the edges'.")
    var origin: String?

    func validate() throws {
        guard EdgeConfiguration.parseHostPort(listen) != nil else { throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:4440") }
        guard !edges.isEmpty else { throw ValidationError("name at least one --edge URL") }
        guard edges.count <= 64 else { throw ValidationError("at most 64 edges") }
        for url in edges + (origin.map { [$0] } ?? []) where EdgeConfiguration.parseUpstreamURL(url) == nil {
            throw ValidationError("'\(url)' is not an http:// or https:// URL with host and port")
        }
    }

    func run() async throws {
        let (host, port) = EdgeConfiguration.parseHostPort(listen)!
        var members = edges.compactMap { FleetMember(kind: .edge, url: $0) }
        if let origin, let member = FleetMember(kind: .origin, url: origin) { members.append(member) }
        let server = try FleetDashboardServer(host: host, port: port, members: members)
        try await server.start()
        print("durable-streams fleet dashboard: http://\(host.contains(":") ? "[\(host)]" : host):\(server.port ?? port)/")
        await Signals.waitForTermination()
        try await server.shutdown()
    }
}
