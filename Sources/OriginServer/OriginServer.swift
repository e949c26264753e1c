import DurableStreams
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServerSupport
import StreamAuth
import StreamStore
import Subscriptions

/// A Durable Streams origin: an HTTP/1.1 server over a `StreamStore`.
///
/// ```swift
/// var configuration = OriginConfiguration()
/// configuration.port = 0                       // any free port
/// let server = OriginServer(configuration: configuration)
/// try await server.start()
/// print(server.port!)                          // where it listens
/// try await server.shutdown()
/// ```
public final class OriginServer: Sendable {
    public let configuration: OriginConfiguration
    public let store: any StreamStore
    public let metrics: OriginMetrics
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let logger: Logger
    private let service: StreamService
    /// Subscriptions (§6–7); `nil` when `configuration.subscriptions` is off.
    public let subscriptions: SubscriptionRegistry?
    private let state = NIOLockedValueBox(RunState())
    private let connections = ConnectionRegistry()
    /// `/readyz` and the access log.
    private let operations = ServerOperations()
    /// Answers /readyz: ready until a drain begins.
    public var readiness: Readiness { operations.readiness }
    /// Who may do what; `reloadAuth` replaces it.
    private let auth = AuthPolicy(AuthPolicy.Current(authenticator: nil, operationalScope: nil))

    private struct RunState {
        var channel: (any Channel)?
        var sweeper: RepeatedTask?
        var cap: ConnectionCap?
        var tls: ServerTLS?
        var bodyBudget: RequestBodyBudget?
        /// Takes a history sample every second while the origin runs (`/__origin/stats`).
        var sampler: RepeatedTask?
    }

    /// - Parameters:
    ///   - store: where streams live; an in-memory store by default.
    ///   - group: event loops to run on; by default the server makes (and later shuts down) its own.
    public init(
        configuration: OriginConfiguration, store: (any StreamStore)? = nil, group: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "durable-streams.origin")
    ) {
        self.configuration = configuration
        self.store = store ?? MemoryStore()
        self.metrics = OriginMetrics()
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        self.ownsGroup = group == nil
        self.logger = logger
        let connections = self.connections
        self.subscriptions = configuration.subscriptions ? Self.makeSubscriptions(configuration, store: self.store, group: self.group, logger: logger) : nil
        self.service = StreamService(
            configuration: configuration, store: self.store, metrics: metrics, connections: { connections.count },
            subscriptions: subscriptions)
    }

    /// Subscriptions over `store`, delivering webhooks with NIO's HTTP client on `group`.
    private static func makeSubscriptions(_ configuration: OriginConfiguration, store: any StreamStore, group: any EventLoopGroup, logger: Logger)
        -> SubscriptionRegistry
    {
        let keys = configuration.subscriptionKeys ?? .random()
        let client = WebhookClient(
            group: group, threadPool: .singleton, trustRoots: configuration.webhookCAFile.map { .file($0) } ?? .default)
        return SubscriptionRegistry(
            store: store, signer: keys.signer, tokens: CallbackTokens(secret: keys.tokenSecret), group: group, logger: logger,
            journal: configuration.subscriptionDirectory.map { SubscriptionJournal(directory: $0) }
        ) { url, headers, body, timeout in
            client.post(url, headers: headers, body: body, timeout: timeout).map { (status: $0.status, body: $0.body) }
        }
    }

    /// The port the server listens on, once started.
    public var port: Int? { state.withLockedValue { $0.channel?.localAddress?.port } }

    /// Client connections open now.
    public var openConnections: Int { connections.count }

    /// Response bytes waiting for clients' sockets to take them, over all connections.
    public func queuedResponseBytes() async -> Int { await connections.queuedResponseBytes() }

    /// Request-body bytes held by requests still arriving, over all connections.
    public var requestBodyBytesInFlight: Int { state.withLockedValue { $0.bodyBudget?.inUse ?? 0 } }

    /// Connections closed on arrival because `limits.maxConnections` were open.
    public var refusedConnections: Int { state.withLockedValue { $0.cap?.refused ?? 0 } }

    /// The base URL of the server, e.g. `http://127.0.0.1:4437`, once started.
    public var baseURL: String? {
        port.map { ServerTLS.baseURL(host: configuration.host, port: $0, tls: configuration.tls) }
    }

    /// Reads the TLS certificate and key files again (blocking: not on an event loop) and uses
    /// them for new connections; open connections keep theirs. On an error nothing changes.
    /// Turning TLS on or off, or HTTP/2, needs a restart: the listening pipeline is built once.
    public func reloadTLS(_ settings: TLSSettings?) throws {
        try ServerTLS.reload(state.withLockedValue { $0.tls }, with: settings)
    }

    /// Binds and starts serving.
    public func start() async throws {
        let configuration = self.configuration
        // Replies are compressed before the connection handler sees them, not in the pipeline.
        var service: any HTTPResponder = configuration.compression
            ? CompressingResponder(self.service, compression: ResponseCompression(thresholdBytes: configuration.compressionThresholdBytes))
            : self.service
        // Credentials are checked before anything else looks at the request. Always in place, so
        // that a reload can turn authentication on, rotate its keys, or turn it off.
        try await reloadAuth(configuration.auth)
        let authRefusals = metrics.authRefusals
        // /readyz behind authentication (public unless health_scope says otherwise); the access
        // log outermost, so that refusals are logged too.
        service = try operations.wrap(service, accessLogPath: configuration.accessLog) { [auth] inner in
            // The stats and the dashboard tell what /metrics tells: the same scope guards them.
            AuthorizingResponder(
                inner, policy: auth, streamPathPrefix: configuration.streamPathPrefix,
                operationalPaths: ["/metrics", StreamService.statsPath, StreamService.dashboardPath],
                onRefusal: { authRefusals.count($0) })
        }
        let responder = service
        // Subscriptions kept by an earlier run are back before the first request.
        if let subscriptions {
            let count = try await subscriptions.restore(on: group.next()).get()
            if count > 0 { logger.info("subscriptions restored", metadata: ["count": "\(count)"]) }
        }
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
            group: group, backlog: 1024, limits: configuration.limits, cap: cap, tls: tls, registry: connections,
            onRefused: {
                metrics.connectionCounters.connectionRefused()
                refusedLog.record()
            },
            onExpiry: { metrics.connectionCounters.connectionTimedOut($0) }
        ) { framing in
            HTTPServerHandler(responder: responder, bodyBudget: bodyBudget, framing: framing)
        }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        // Every store reclaims expired streams this way; the next sweep starts 30 s after the
        // last one finished, so a slow store is never swept twice at once.
        let store = self.store
        let loop = channel.eventLoop
        let sweeper = loop.scheduleRepeatedAsyncTask(initialDelay: .seconds(30), delay: .seconds(30)) { _ in
            store.sweepExpired(on: loop).map { _ in }.recover { _ in }
        }
        let sampler = startSampling()
        state.withLockedValue {
            $0.channel = channel
            $0.sweeper = sweeper
            $0.cap = cap
            $0.tls = tls
            $0.bodyBudget = bodyBudget
            $0.sampler = sampler
        }
        logger.info("origin listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
    }

    /// One history sample a second, on one event loop (cheap: a copy of the counts under the
    /// metrics lock, and the store's stream count), timed by the wall clock so that samples line
    /// up with real seconds.
    private func startSampling() -> RepeatedTask {
        let (metrics, store, connections, clock) = (self.metrics, self.store, self.connections, service.clock)
        metrics.started(at: Int64(clock()))
        return group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            metrics.sample(at: Int64(clock()), openConnections: connections.count, streams: store.streamCount)
        }
    }

    /// Loads `settings`' key files and puts them in force for every request from now on. On an
    /// error nothing changes.
    public func reloadAuth(_ settings: AuthSettings) async throws {
        let metrics = self.metrics
        auth.replace(with: try await AuthPolicy.load(settings, forwardAuthObserver: { metrics.forwardAuth($0) }))
    }

    /// Stops accepting connections, ends in-flight long-polls (204) and SSE responses, waits for
    /// connections to close (up to `gracePeriod`), then releases the event loops it owns.
    public func shutdown(gracePeriod: TimeAmount = .seconds(5)) async throws {
        let (channel, sweeper, sampler) = state.withLockedValue { state in
            defer {
                state.channel = nil
                state.sweeper = nil
                state.sampler = nil
            }
            return (state.channel, state.sweeper, state.sampler)
        }
        readiness.beginDraining()
        subscriptions?.shutdown()
        sweeper?.cancel()
        sampler?.cancel()
        try? await channel?.close()
        try await connections.quiesceAll(gracePeriod: gracePeriod)
        operations.finish()
        // Every accepted append is committed before the files close.
        await store.shutdown()
        if ownsGroup { try await group.shutdownGracefully() }
    }
}
