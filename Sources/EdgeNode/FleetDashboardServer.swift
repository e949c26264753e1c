import DurableStreams
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServerSupport

/// `durable-streams dashboard`: serves the fleet page at `/` for the edges and origin it is
/// given, on its own port (for an operator's machine or a monitoring host), beside the edges'
/// own pages.
public final class FleetDashboardServer: Sendable {
    private let host: String
    private let requestedPort: Int
    private let group: any EventLoopGroup
    private let fleet: FleetResponder
    private let connections = ConnectionRegistry()
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)
    private let logger: Logger

    public init(host: String, port: Int, members: [FleetMember], logger: Logger = Logger(label: "durable-streams.dashboard")) throws {
        self.host = host
        self.requestedPort = port
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        fleet = try FleetResponder(basePath: "/", members: members, group: group)
    }

    public var port: Int? { channel.withLockedValue { $0?.localAddress?.port } }

    public func start() async throws {
        let limits = ConnectionLimits()
        let cap = ConnectionCap(limit: 1_024)
        let responder = FleetHTTPResponder(fleet: fleet)
        let bodyBudget = RequestBodyBudget(limit: 1 << 20)
        let bootstrap = HTTPServerBootstrap.make(group: group, backlog: 256, limits: limits, cap: cap, registry: connections) { framing in
            HTTPServerHandler(responder: responder, bodyBudget: bodyBudget, framing: framing)
        }
        let bound = try await bootstrap.bind(host: host, port: requestedPort).get()
        channel.withLockedValue { $0 = bound }
        logger.info("fleet dashboard listening", metadata: [
            "address": "\(bound.localAddress.map { "\($0)" } ?? "?")", "members": "\(fleet.members.map(\.url))",
        ])
    }

    public func shutdown() async throws {
        let bound = channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
        try await connections.quiesceAll(gracePeriod: .seconds(2))
        await fleet.shutdown()
        try await group.shutdownGracefully()
    }
}

/// The dashboard server's responder: the fleet's paths, 404 for everything else.
private struct FleetHTTPResponder: HTTPResponder {
    let fleet: FleetResponder
    var maxBodyBytes: Int { 0 }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        let target = RequestTarget(request.head.uri)
        let path = String(target.path)
        let query = target.query
        if request.head.method == .GET || request.head.method == .HEAD, let reply = fleet.respond(path: path, query: query, on: loop) {
            return .later(reply)
        }
        return .now(EdgeService.text(request.head.method == .GET ? .notFound : .methodNotAllowed, "not found\n", cache: "PASS"))
    }

    func refusal(_ error: ProtocolError) -> ServerReply {
        EdgeService.text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", cache: "PASS")
    }

    func connectionOpened() {}
    func connectionClosed() {}
}
