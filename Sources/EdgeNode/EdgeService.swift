import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// The edge's request logic, as the shared connection handler's responder. This file routes;
/// each concern has its own file: cached reads and flights (`+CachedReads`), background
/// revalidation and TTL renewal (`+Revalidation`), SSE (`+SSE`), pass-through (`+PassThrough`),
/// `[[route]]` upstreams (`+Routes`) and the replies it writes (`+Replies`). Stateless apart
/// from the shared caches, flights and tails; runs on the calling connection's event loop and
/// never blocks it.
final class EdgeService: HTTPResponder {
    let configuration: EdgeConfiguration
    let upstream: UpstreamClient
    /// Long-polls hold a connection for up to the upstream's long-poll timeout, so they get a pool
    /// of their own: catch-up reads and writes never queue behind them.
    let liveUpstream: UpstreamClient
    let cache: ResponseCache
    let metrics: EdgeMetrics
    let flights = Collapser<CacheKey, UpstreamResponse>()
    let revalidations = Collapser<CacheKey, UpstreamResponse>()
    let tails = TailTracker()
    let lifetimes = StreamLifetimes()
    let fanout: SSEFanout
    let cursors = CursorPolicy()
    /// Open client connections, for the stats page.
    let connections: @Sendable () -> Int
    /// The `[[route]]` upstreams, by path prefix.
    let routes: RouteTable<RouteUpstream>
    let routeCache: RouteCache
    /// The fleet page of this edge and its `peers`, if any are configured.
    let fleet: FleetResponder?

    init(configuration: EdgeConfiguration, upstream: UpstreamClient, liveUpstream: UpstreamClient, metrics: EdgeMetrics,
         routes: RouteTable<RouteUpstream>, fleet: FleetResponder? = nil, connections: @escaping @Sendable () -> Int) {
        self.fleet = fleet
        self.configuration = configuration
        self.upstream = upstream
        self.liveUpstream = liveUpstream
        self.routes = routes
        self.routeCache = RouteCache(budgetBytes: configuration.routeCacheBudgetBytes)
        self.cache = ResponseCache(budgetBytes: configuration.cacheBudgetBytes)
        self.fanout = SSEFanout(upstream: upstream, onReceived: { [metrics] in metrics.upstreamReceived(bytes: $0) })
        self.metrics = metrics
        self.connections = connections
    }

    var maxBodyBytes: Int { configuration.maxBodyBytes }

    func connectionOpened() { metrics.openConnections.increment() }
    func connectionClosed() { metrics.openConnections.decrement() }

    /// `/__edge/stats` for a query (`history=hour|day`, `since=T`).
    func statsJSON(query: Substring) -> [UInt8] {
        metrics.json(
            cache: cache.stats, routeCache: routeCache.stats, openConnections: connections(),
            history: EdgeMetrics.HistoryRequest(query: query), now: Int64(configuration.wallClock()))
    }

    func refusal(_ error: ProtocolError) -> ServerReply {
        var reply = Self.text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", cache: "PASS")
        // The headers the refusal names (`WWW-Authenticate`, `Allow`, …) go with it.
        if case .response(var head, let body) = reply, !error.headers.isEmpty {
            for (name, value) in error.headers { head.headers.replaceOrAdd(name: name, value: value) }
            reply = .response(head, body: body)
        }
        return reply
    }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        let target = RequestTarget(request.head.uri)
        let path = target.path
        let query = target.query
        let method = request.head.method

        // The protocol's control APIs (`__ds/…`) are the origin's, whoever asks: passed through
        // before anything below can treat them as a stream, refuse their credentials (callback
        // and claim tokens are no service credentials; the origin checks them) or cache them.
        if ControlPath.contains(path, prefix: configuration.streamPathPrefix) {
            return .later(forwardControl(request, path: path, live: live, loop: loop))
        }

        // Only the first Authorization would be in the cache key, yet every one would go
        // upstream: two requests that differ in the others would share an entry they may not
        // both be entitled to. No client needs two, so refuse rather than guess.
        if request.head.headers.single("Authorization") == .repeated {
            return .now(Self.text(.badRequest, "more than one Authorization header\n", cache: "PASS"))
        }

        if method == .GET {
            if path == configuration.metricsPath {
                let text = metrics.render(cache: cache.stats, routeCache: routeCache.stats)
                return .now(Self.local("text/plain; version=0.0.4", text))
            } else if path == configuration.statsPath {
                return .now(Self.local("application/json", statsJSON(query: query)))
            } else if path == configuration.dashboardPath {
                return .now(Self.local("text/html; charset=utf-8", Array(EdgeDashboard.html(statsPath: configuration.statsPath).utf8)))
            } else if let fleet, let reply = fleet.respond(path: String(path), query: query, on: loop, localStats: statsJSON(query:)) {
                return .later(reply)
            }
        }
        // The edge's own pages (above) and streams keep priority over routes; `routes` never
        // matches a path under the stream prefix, so a route for `/` takes everything else.
        if let route = routes.target(forPath: path) {
            return .later(forward(request, to: route, live: live, loop: loop))
        }
        guard path.utf8.starts(with: configuration.streamPathPrefix.utf8) else {  // by byte, as `StreamPath` reads it
            return .later(forward(request, kind: .other, live: live, loop: loop))
        }
        // The upstream decodes the path, so many spellings name one stream (`a-b`, `a%2Db`):
        // everything kept per stream is keyed by the canonical name, or a write under one
        // spelling would leave another's entries behind. A name the upstream will refuse is
        // its to answer (400), and is neither cached nor collapsed.
        guard let stream = try? StreamPath.canonicalName(urlPath: path, prefix: configuration.streamPathPrefix) else {
            return .later(forward(request, kind: .other, live: live, loop: loop))
        }
        // Decode only to classify; anything the edge does not understand is the upstream's to judge.
        let operation = try? StreamOperation.decode(
            method: method.rawValue, query: query, header: { request.head.headers.first(name: $0) },
            bodyLength: request.body.readableBytes)
        switch operation {
        case .read(let read)?:
            switch read.mode {
            case .sse:
                return .later(sse(stream, read, request: request, live: live, loop: loop))
            case .catchUp, .longPoll:
                return self.read(stream, read, request: request, live: live, loop: loop)
            }
        case .head?:
            return .later(forward(request, kind: .head, live: live, loop: loop))
        case .create?:
            return .later(forward(request, kind: .write, live: nil, loop: loop).map { [cache, tails, lifetimes] reply in
                // A new stream at a path that had one before must not be served the old one's entries.
                if reply.status == .created {
                    cache.purge(stream: stream)
                    tails.forget(stream)
                    lifetimes.forget(stream)
                }
                return reply
            })
        case .append?:
            return .later(forward(request, kind: .write, live: nil, loop: loop))
        case .delete?:
            return .later(forward(request, kind: .write, live: nil, loop: loop).map { [cache, tails, lifetimes] reply in
                // 204 for a delete or a soft delete (§4.2), 404 or 410 when it was gone already.
                if reply.status == .noContent || reply.status == .notFound || reply.status == .gone {
                    cache.purge(stream: stream)
                    tails.forget(stream)
                    lifetimes.forget(stream)
                }
                return reply
            })
        case nil:
            return .later(forward(request, kind: .other, live: live, loop: loop))
        }
    }
}
