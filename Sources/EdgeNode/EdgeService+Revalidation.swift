import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// Work the edge does in the background for what it serves from its cache: revalidating stale
/// entries and renewing sliding TTLs that cached reads would otherwise let run out.
extension EdgeService {
    /// Renews a sliding TTL that reads served from the cache would otherwise let run out (see
    /// `StreamLifetimes`): one background `GET ?offset=now`, which renews it and returns nothing.
    func renewTTL(_ stream: String, credentials: String?, loop: any EventLoop) {
        var head = HTTPRequestHead(
            version: .http1_1, method: .GET,
            uri: StreamPath.urlPath(forName: stream, prefix: configuration.streamPathPrefix) + "?offset=now")
        if let credentials { head.headers.add(name: "Authorization", value: credentials) }
        metrics.upstream(.catchUp)
        let lifetimes = self.lifetimes
        let wallClock = configuration.wallClock
        upstream.execute(head, body: nil, timeout: configuration.upstreamTimeout, on: loop, cancellation: UpstreamCancellation())
            .whenSuccess { response in
                lifetimes.observe(stream, status: response.head.status, response.head.headers, now: wallClock())
            }
    }

    /// One background revalidation per key while a stale entry is being served.
    func revalidate(_ key: CacheKey, _ entry: CachedResponse, kind: RequestClass, loop: any EventLoop) {
        guard revalidations.waiters(for: key) == 0 else { return }
        // Revalidate as the catch-up read the entry holds: only catch-up entries are revalidated
        // (a long-poll must come back with its own fresh cursor).
        let offset = key.variant.split(separator: "&").first { $0.hasPrefix("offset=") }?.dropFirst("offset=".count) ?? "-1"
        let uri = StreamPath.urlPath(forName: key.stream, prefix: configuration.streamPathPrefix) + "?offset=" + offset
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        if let credentials = key.credentials { head.headers.add(name: "Authorization", value: credentials) }
        if key.variant.hasSuffix("&encoding=gzip") { head.headers.add(name: "Accept-Encoding", value: "gzip") }
        if let etag = entry.etag { head.headers.add(name: "If-None-Match", value: etag) }
        let joined = revalidations.join(key, on: loop) {
            fetch(head, key: key, kind: kind, timeout: configuration.upstreamTimeout, loop: loop)
        }
        joined.future.whenFailure { _ in }  // a failed revalidation leaves the stale entry in place
    }
}
