import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// A `[[route]]` as the running edge has it: its settings and its own pooled client.
struct RouteUpstream: Sendable {
    let route: EdgeRoute
    let client: UpstreamClient
}

/// Requests for `[[route]]` path prefixes: passed to the route's upstream as a plain reverse
/// proxy would (same method, target, end-to-end headers and body, with `Via`,
/// `X-Forwarded-Host` and `X-Forwarded-Proto` as for the edge's own upstream), and answered with
/// what comes back, hop-by-hop headers removed. Kept only when the answer says a shared cache
/// may keep it (`RouteCachePolicy`), in `RouteCache`; everything else is `X-Cache: PASS`.
extension EdgeService {
    func forward(_ request: ServerRequest, to upstream: RouteUpstream, live: LiveRequest, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        proxy(request, via: upstream.client, timeout: upstream.route.timeout, kind: .route, mayCache: true, live: live, loop: loop)
    }

    /// Passes a request on as a plain reverse proxy would, for `[[route]]`s (`kind: .route`,
    /// through the route's client) and for the protocol's control paths (`ControlPath`, through
    /// the edge's own upstream): nothing of the stream protocol applies. With `mayCache`, a GET
    /// is served from and kept in `RouteCache` when `RouteCachePolicy` allows it.
    func proxy(
        _ request: ServerRequest, via client: UpstreamClient, timeout: TimeAmount, kind: RequestClass, mayCache: Bool,
        live: LiveRequest, loop: any EventLoop
    ) -> EventLoopFuture<ServerReply> {
        let key = mayCache && routeCache.isEnabled ? RouteCachePolicy.key(for: request.head, bodyBytes: request.body.readableBytes) : nil
        if let key, let entry = routeCache.get(key, now: configuration.clock()) {
            return loop.makeSucceededFuture(serve(
                entry, outcome: .hit, kind: kind, ifNoneMatch: request.head.headers.first(name: "If-None-Match"),
                now: configuration.clock()))
        }
        metrics.upstream(kind)
        // A route's upstream is another server: its failures and timings say nothing of the origin's.
        let isRoute = kind == .route
        let started = NIODeadline.now()
        let body = request.body.readableBytes > 0 ? request.body : nil
        let cancellation = UpstreamCancellation()
        // A client that leaves frees its upstream connection instead of holding it to the timeout.
        live.onCancel { cancellation.cancel() }
        return client.execute(upstreamHead(request.head), body: body, timeout: timeout, on: loop, cancellation: cancellation)
            .map { [self] response in
                if !isRoute {
                    metrics.upstreamAnswered(seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9, bytes: response.body.readableBytes)
                }
                let stored = key.map { storeRouteAnswer(response, under: $0) } ?? false
                var passed = response
                var headers = Self.headersToServe(response)
                // A HEAD answer's length is that of the GET answer it stands for, not of its
                // (empty) body.
                if request.head.method == .HEAD, let length = response.head.headers.first(name: "Content-Length") {
                    headers.replaceOrAdd(name: "Content-Length", value: length)
                }
                // Unlike a stream answer, which the edge dates itself, an answer passed on keeps
                // the `Age` it came with: caches further on must know how old it already is.
                if let age = response.head.headers.first(name: "Age") { headers.add(name: "Age", value: age) }
                passed.headersToServe = headers
                return relay(passed, outcome: stored ? .miss : .pass, kind: kind, ifNoneMatch: nil)
            }.recover { [metrics] error in
                if !cancellation.isCancelled {
                    if isRoute { metrics.routeUpstreamFailed() } else { metrics.upstreamFailed() }
                }
                metrics.request(kind, .pass)
                return Self.upstreamFailure(error)
            }
    }

    /// Keeps a route answer if `RouteCachePolicy` allows it, fresh for its lifetime less the
    /// `Age` it arrived with. Returns whether it was kept.
    private func storeRouteAnswer(_ response: UpstreamResponse, under key: String) -> Bool {
        guard let lifetime = RouteCachePolicy.lifetime(status: response.head.status, headers: response.head.headers) else { return false }
        let age = TimeAmount.seconds(RouteCachePolicy.age(response.head.headers))
        guard age < lifetime else { return false }
        let now = configuration.clock()
        // Dated back by its `Age`, so that the `Age` a hit is served with counts from when the
        // answer was made, not from when this edge received it.
        let made = now - age
        let entry = CachedResponse(
            status: response.head.status, headers: Self.headersToServe(response), body: response.body, storedAt: made,
            freshUntil: made + lifetime, staleUntil: nil, etag: response.head.headers.first(name: "ETag"))
        return routeCache.put(key, entry)
    }
}
