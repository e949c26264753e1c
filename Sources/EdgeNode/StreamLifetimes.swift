import DurableStreams
import NIOConcurrencyHelpers
import NIOHTTP1

/// When the streams the edge serves expire, as the upstream's answers say (`Stream-Expires-At`,
/// or a sliding `Stream-TTL`, which each upstream read renews). A cached answer is never served
/// once its stream has expired, whatever its max-age or stale window: the origin would answer 404.
///
/// A sliding TTL is renewed by reads, but reads the edge answers from its cache never reach the
/// origin. So that a stream read only through the edge does not expire under its readers, the
/// edge renews it itself: at most once per half TTL, a read served from the cache sends one
/// background `GET ?offset=now` (a read that renews the TTL and returns nothing).
final class StreamLifetimes: Sendable {
    struct Known: Sendable, Equatable {
        /// Seconds since 1970.
        var expiresAt: Double
        /// The sliding TTL, for a stream that has one.
        var ttl: UInt64?
        /// When the TTL was last renewed (by an upstream read, or our own renewal).
        var renewedAt: Double
    }

    private let streams = NIOLockedValueBox<[String: Known]>([:])
    /// Bounded like the tail tracker: a hint, so a full map is simply cleared (and refilled by
    /// the next answers). A forgotten stream is served as before, until its entries age out.
    private let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Records what an upstream answer to a read (GET or HEAD) of `stream`, received at `now`,
    /// says of its lifetime: a 404 means it is gone, and so does a 410 (deleted while forks
    /// still use its data, §4.2); a 200 carries its lifetime, or none.
    func observe(_ stream: String, status: HTTPResponseStatus, _ headers: HTTPHeaders, now: Double) {
        switch status {
        case .notFound, .gone:
            return expire(stream, now: now)
        case .ok:
            break
        default:
            return  // 204s and 304s do not carry the lifetime
        }
        let ttl = headers.first(name: HeaderName.ttl)
        let expires = headers.first(name: HeaderName.expiresAt)
        guard ttl != nil || expires != nil,
            let lifetime = try? StreamLifetime(ttlHeader: ttl, expiresAtHeader: expires),
            let expiresAt = lifetime.expiry(lastAccess: now)
        else { return forget(stream) }
        var seconds: UInt64?
        if case .ttl(let value) = lifetime { seconds = value }
        streams.withLockedValue { streams in
            if streams[stream] == nil, streams.count >= capacity { streams.removeAll(keepingCapacity: true) }
            streams[stream] = Known(expiresAt: expiresAt, ttl: seconds, renewedAt: now)
        }
    }

    func isExpired(_ stream: String, now: Double) -> Bool {
        streams.withLockedValue { $0[stream] }.map { now >= $0.expiresAt } ?? false
    }

    /// What a read about to be answered from the cache must know of its stream.
    enum CachedRead: Equatable {
        /// Expired (or gone): not from the cache.
        case expired
        case alive
        /// Alive, and its sliding TTL is due a renewal, which the caller sends; it is counted as
        /// sent already, so concurrent readers do not send another.
        case renewalDue
    }

    /// One look (one lock) per cached read.
    func cachedRead(_ stream: String, now: Double) -> CachedRead {
        streams.withLockedValue { streams in
            guard var known = streams[stream] else { return .alive }
            if now >= known.expiresAt { return .expired }
            guard let ttl = known.ttl, now - known.renewedAt >= Double(ttl) / 2 else { return .alive }
            known.renewedAt = now
            streams[stream] = known
            return .renewalDue
        }
    }

    /// The stream is gone (the upstream answered 404 or 410): its cached answers must not be served.
    func expire(_ stream: String, now: Double) {
        streams.withLockedValue { streams in
            if streams[stream] == nil, streams.count >= capacity { streams.removeAll(keepingCapacity: true) }
            streams[stream] = Known(expiresAt: now, ttl: nil, renewedAt: now)
        }
    }

    func forget(_ stream: String) {
        _ = streams.withLockedValue { $0.removeValue(forKey: stream) }
    }

    func known(_ stream: String) -> Known? {
        streams.withLockedValue { $0[stream] }
    }
}
