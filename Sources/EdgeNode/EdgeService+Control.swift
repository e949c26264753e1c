import NIOCore
import ServerSupport

/// Requests for the protocol's control paths (`ControlPath`: `<prefix>__ds/…`, subscriptions
/// and the origin's key set). They are the origin's APIs, not streams: the edge does not decode
/// them as stream operations, cache them, collapse them or fan them out. Method, target (its
/// percent-encoding and query as received), end-to-end headers (the client's `Authorization`
/// among them) and body go upstream as they came; the answer comes back as it is, `X-Cache: PASS`.
extension EdgeService {
    func forwardControl(_ request: ServerRequest, path: Substring, live: LiveRequest, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        // The key set is the one control answer meant to be shared (`public, max-age`): it is
        // kept in the route cache, by plain HTTP freshness, when the answer says so. Requests
        // with credentials never use it (`RouteCachePolicy.key`).
        let mayCache = request.head.method == .GET && ControlPath.isKeySet(path, prefix: configuration.streamPathPrefix)
        return proxy(request, via: upstream, timeout: configuration.upstreamTimeout, kind: .other, mayCache: mayCache, live: live, loop: loop)
    }
}
