import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServerSupport
import StreamAuth

/// A Durable Streams edge node: caches, collapses and relays reads in front of an upstream
/// (an origin or another edge), and passes writes through.
///
/// ```swift
/// var configuration = EdgeConfiguration()
/// configuration.port = 0
/// configuration.upstreamPort = origin.port!
/// let edge = EdgeServer(configuration: configuration)
/// try await edge.start()
/// try await edge.shutdown()
/// ```
public final class EdgeServer: Sendable {
    public let configuration: EdgeConfiguration
    public let metrics: EdgeMetrics
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let logger: Logger
    private let upstream: UpstreamClient
    private let liveUpstream: UpstreamClient
    /// Why an upstream's (or a route's) TLS context could not be made, reported by `start`.
    private let upstreamTLSProblem: (any Error)?
    /// One pooled client per `[[route]]`, shut down with the server.
    private let routeUpstreams: [RouteUpstream]
    /// The fleet page's clients for the peers, shut down with the server.
    private let fleet: FleetResponder?
    private let service: EdgeService
    private let state = NIOLockedValueBox(RunState())
    private let connections = ConnectionRegistry()
    /// `/readyz` and the access log.
    private let operations = ServerOperations()
    /// Answers /readyz: ready until a drain begins.
    public var readiness: Readiness { operations.readiness }
    /// With credentials = verify: who may do what; `reloadAuth` replaces it.
    private let auth = AuthPolicy(AuthPolicy.Current(authenticator: nil, operationalScope: nil))
    /// With `credentials = verify`: what authorised reads carry upstream (re-read on reload).
    private let upstreamCredential = UpstreamCredential(nil)

    private struct RunState {
        var channel: (any Channel)?
        var cap: ConnectionCap?
        var tls: ServerTLS?
        var bodyBudget: RequestBodyBudget?
        /// Takes a history sample every second while the edge runs.
        var sampler: RepeatedTask?
    }

    public init(configuration: EdgeConfiguration, group: (any EventLoopGroup)? = nil, logger: Logger = Logger(label: "durable-streams.edge")) {
        self.configuration = configuration
        self.metrics = EdgeMetrics()
        let ownsGroup = group == nil
        let group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        self.group = group
        self.ownsGroup = ownsGroup
        self.logger = logger
        // Made once for both pools (and once per https route); a CA file that cannot be read
        // stops `start` with its reason.
        var tlsProblem: (any Error)?
        func makeTLS(_ settings: UpstreamTLSSettings?, host: String) -> UpstreamTLS? {
            do {
                return try settings.map { try UpstreamTLS($0, host: host) }
            } catch {
                tlsProblem = tlsProblem ?? error
                return nil
            }
        }
        let upstreamTLS = makeTLS(configuration.upstreamTLS, host: configuration.upstreamHost)
        self.upstream = UpstreamClient(
            host: configuration.upstreamHost, port: configuration.upstreamPort, group: group,
            maxConnections: configuration.upstreamMaxConnections, connectTimeout: configuration.upstreamConnectTimeout,
            tls: upstreamTLS)
        self.liveUpstream = UpstreamClient(
            host: configuration.upstreamHost, port: configuration.upstreamPort, group: group,
            maxConnections: configuration.upstreamMaxLongPollConnections, connectTimeout: configuration.upstreamConnectTimeout,
            tls: upstreamTLS)
        let routeUpstreams = configuration.routes.map { route in
            RouteUpstream(route: route, client: UpstreamClient(
                host: route.upstreamHost, port: route.upstreamPort, group: group, maxConnections: route.maxConnections,
                connectTimeout: configuration.upstreamConnectTimeout, maxResponseBytes: route.maxResponseBytes,
                tls: makeTLS(route.upstreamTLS, host: route.upstreamHost)))
        }
        self.routeUpstreams = routeUpstreams
        // The fleet page: this edge first (answered locally), then its peers and the origin.
        var fleet: FleetResponder?
        if !configuration.peers.isEmpty || configuration.fleetOrigin != nil {
            var members = [FleetMember(localEdge: "this edge (\(configuration.host):\(configuration.port))")]
            members += configuration.peers.compactMap { FleetMember(kind: .edge, url: $0) }
            if let origin = configuration.fleetOrigin.flatMap({ FleetMember(kind: .origin, url: $0) }) { members.append(origin) }
            do {
                fleet = try FleetResponder(basePath: configuration.fleetPath, members: members, localIndex: 0, group: group)
            } catch {
                tlsProblem = tlsProblem ?? error
            }
        }
        upstreamTLSProblem = tlsProblem
        self.fleet = fleet
        let connections = self.connections
        self.service = EdgeService(
            configuration: configuration, upstream: upstream, liveUpstream: liveUpstream, metrics: metrics,
            routes: RouteTable(routeUpstreams.map { ($0.route.pathPrefix, $0) }, streamPathPrefix: configuration.streamPathPrefix),
            fleet: fleet,
            connections: { connections.count })
    }

    /// The port the edge listens on, once started.
    public var port: Int? { state.withLockedValue { $0.channel?.localAddress?.port } }

    /// Client connections open now.
    public var openConnections: Int { connections.count }

    /// Response bytes waiting for clients' sockets to take them, over all connections.
    public func queuedResponseBytes() async -> Int { await connections.queuedResponseBytes() }

    /// Request-body bytes held by requests still arriving, over all connections.
    public var requestBodyBytesInFlight: Int { state.withLockedValue { $0.bodyBudget?.inUse ?? 0 } }

    /// Connections closed on arrival because `limits.maxConnections` were open.
    public var refusedConnections: Int { state.withLockedValue { $0.cap?.refused ?? 0 } }

    public var baseURL: String? {
        port.map { ServerTLS.baseURL(host: configuration.host, port: $0, tls: configuration.tls) }
    }

    /// Reads the TLS certificate and key files again (blocking: not on an event loop) and uses
    /// them for new connections; open connections keep theirs. On an error nothing changes.
    /// Turning TLS on or off, or HTTP/2, needs a restart: the listening pipeline is built once.
    public func reloadTLS(_ settings: TLSSettings?) throws {
        try ServerTLS.reload(state.withLockedValue { $0.tls }, with: settings)
    }

    /// Client requests waiting on a shared upstream request right now.
    public var collapsedWaiters: Int { service.flights.totalWaiters }

    /// Cache statistics, for tests and tools.
    public var cacheStats: ResponseCache.Stats { service.cache.stats }

    /// The `Authorization` value for a credential file's content. Blocking read, at start or reload.
    static func readCredential(_ path: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw AuthConfigurationError("cannot read upstream_authorization_file \(path): \(error.localizedDescription)")
        }
        guard !text.isEmpty, BearerCredential(header: "Bearer " + text) != nil else {
            throw AuthConfigurationError("upstream_authorization_file \(path) must hold one API key or token")
        }
        return "Bearer " + text
    }

    /// With `credentials = verify`: loads `settings`' key files and the credential the edge
    /// sends upstream for authorised readers (`upstreamAuthorizationFile`, read again: a rotated
    /// key takes effect), and puts them in force for every request from now on. Blocking file
    /// reads: not on an event loop. On an error nothing changes; settings without keys are
    /// refused (verify must always have something to verify with).
    public func reloadAuth(_ settings: AuthSettings, upstreamAuthorizationFile: String?) async throws {
        guard settings.forwardAuthURL == nil else {
            throw AuthConfigurationError("forward_auth_url is an origin setting; an edge checks API keys and JWTs")
        }
        let credential = try upstreamAuthorizationFile.map(Self.readCredential)
        let loaded = try await AuthPolicy.load(settings)
        guard loaded.authenticator != nil else {
            throw AuthConfigurationError("credentials = verify needs api_keys_file or a jwt_* key file")
        }
        auth.replace(with: loaded)
        upstreamCredential.replace(with: credential)
    }

    public func start() async throws {
        if let upstreamTLSProblem { throw upstreamTLSProblem }
        // Without verify, credentials pass through to the origin, which checks them.
        var authorize: (any HTTPResponder) -> any HTTPResponder = { $0 }
        if configuration.credentials == .verify {
            try await reloadAuth(configuration.auth, upstreamAuthorizationFile: configuration.upstreamAuthorizationFile)
            let authorizing = { [auth = self.auth, configuration = self.configuration, refusals = metrics.authRefusals, fleetPaths = fleet?.paths ?? []]
                (inner: any HTTPResponder, credential: AuthorizingResponder.ReadCredential) in
                AuthorizingResponder(
                    inner, policy: auth, streamPathPrefix: configuration.streamPathPrefix,
                    operationalPaths: Set([configuration.metricsPath, configuration.statsPath, configuration.dashboardPath] + fleetPaths),
                    readCredential: credential, otherPathsScope: .admin, onRefusal: { refusals.count($0) })
            }
            let routes = self.service.routes
            let prefix = configuration.streamPathPrefix
            authorize = { [upstreamCredential] inner in
                var checked: any HTTPResponder = authorizing(inner, .replace(upstreamCredential))
                if !routes.isEmpty {
                    // Routes are authorised like any other path, but keep the client's credential.
                    checked = SplitResponder(takes: { routes.target(forURI: $0) != nil }, taken: authorizing(inner, .keep), other: checked)
                }
                // Control paths carry subscription tokens, no service credentials: only the
                // origin can check them, so they reach it unchecked and as sent.
                return SplitResponder(takes: { ControlPath.contains(uri: $0, prefix: prefix) }, taken: inner, other: checked)
            }
        }
        // /readyz behind the edge's own check (public unless health_scope says otherwise); the
        // access log outermost, so that refusals are logged too.
        let service = try operations.wrap(self.service, accessLogPath: configuration.accessLog, authorize: authorize)
        let responder = service
        // Read before binding: a certificate that cannot be used stops the start with its reason.
        let tls = try configuration.tls.map(ServerTLS.init)
        let cap = ConnectionCap(limit: configuration.limits.effectiveMaxConnections(descriptorLimit: FileDescriptorLimit.current))
        let bodyBudget = RequestBodyBudget(limit: configuration.limits.maxRequestBytesInFlight)
        let metrics = self.metrics
        // A full server refuses in floods: said once, then at most every 10 s with the count.
        let refusedLog = ThrottledWarning(interval: .seconds(10)) { [logger] count in
            logger.warning("\(count) connection(s) refused: max_connections (\(cap.limit)) are open; raise it or add capacity")
        }
        let bootstrap = HTTPServerBootstrap.make(
            group: group, backlog: 4096, limits: configuration.limits, cap: cap, tls: tls, registry: connections,
            onRefused: {
                metrics.connectionCounters.connectionRefused()
                refusedLog.record()
            },
            onExpiry: { metrics.connectionCounters.connectionTimedOut($0) }
        ) { framing in
            HTTPServerHandler(responder: responder, bodyBudget: bodyBudget, framing: framing)
        }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        let sampler = startSampling()
        state.withLockedValue {
            $0.channel = channel
            $0.cap = cap
            $0.tls = tls
            $0.bodyBudget = bodyBudget
            $0.sampler = sampler
        }
        logger.info("edge listening", metadata: [
            "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
            "upstream": "\(configuration.upstreamURL)",
        ])
        for upstream in routeUpstreams {
            logger.info("edge route", metadata: [
                "path_prefix": "\(upstream.route.pathPrefix)", "upstream": "\(upstream.route.upstreamHost):\(upstream.route.upstreamPort)",
            ])
        }
    }

    /// One history sample a second, on one event loop (cheap: a copy of the counts under the
    /// metrics lock), timed by the wall clock so samples line up with real seconds.
    private func startSampling() -> RepeatedTask {
        let (metrics, service, connections, wallClock) = (self.metrics, self.service, self.connections, configuration.wallClock)
        return group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            metrics.sample(
                at: Int64(wallClock()), cache: service.cache.stats, openConnections: connections.count,
                sseSubscriptions: service.fanout.count)
        }
    }

    /// Stops accepting, ends in-flight requests, waits for connections to close (up to
    /// `gracePeriod`), and closes the upstream pools (the routes' too).
    public func shutdown(gracePeriod: TimeAmount = .seconds(5)) async throws {
        let (channel, sampler) = state.withLockedValue { state in
            defer {
                state.channel = nil
                state.sampler = nil
            }
            return (state.channel, state.sampler)
        }
        sampler?.cancel()
        readiness.beginDraining()
        try? await channel?.close()
        try await connections.quiesceAll(gracePeriod: gracePeriod)
        operations.finish()
        await upstream.shutdown()
        await liveUpstream.shutdown()
        for route in routeUpstreams { await route.client.shutdown() }
        await fleet?.shutdown()
        if ownsGroup { try await group.shutdownGracefully() }
    }

}
