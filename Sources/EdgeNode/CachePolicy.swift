import DurableStreams
import NIOCore
import NIOHTTP1

/// What to do with an upstream answer to a read, decided from the protocol's headers rather than
/// from `Cache-Control` alone: that is what a generic cache cannot do.
public enum CacheDecision: Equatable, Sendable {
    /// Never store (errors, `no-store`, open-stream 204s, private answers without credentials).
    case doNotStore
    /// Store until evicted: a full chunk never changes, and neither does the end of a closed stream.
    case immutable
    /// Store, fresh for `fresh`, then servable stale for `stale` more (tail answers of open streams).
    case expiring(fresh: TimeAmount, stale: TimeAmount)
}

/// The parsed `Cache-Control` directives the edge acts on.
public struct CacheControl: Equatable, Sendable {
    public var noStore = false
    public var noCache = false
    public var isPrivate = false
    public var maxAge: Int?
    public var staleWhileRevalidate: Int?
    public var staleIfError: Int?

    public init(_ header: String?) {
        guard let header else { return }
        for directive in header.split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingASCII(" \t") }
            guard let name = parts.first?.lowercased() else { continue }
            let value = parts.count > 1 ? Int(parts[1].trimmingASCII("\"")) : nil
            switch name {
            case "no-store": noStore = true
            case "no-cache": noCache = true
            case "private": isPrivate = true
            case "max-age", "s-maxage": maxAge = min(maxAge ?? .max, value ?? 0)
            case "stale-while-revalidate": staleWhileRevalidate = value
            case "stale-if-error": staleIfError = value
            default: break
            }
        }
    }
}

public enum CachePolicy {
    /// Decides whether and how long to keep an upstream answer to a read.
    /// - Parameters:
    ///   - credentialed: the cache key is partitioned by the request's credentials.
    ///   - defaultStale: how long a tail answer may be served stale when the upstream says nothing.
    public static func decide(
        status: HTTPResponseStatus, headers: HTTPHeaders, credentialed: Bool, defaultStale: TimeAmount
    ) -> CacheDecision {
        let control = CacheControl(headers.first(name: "Cache-Control"))
        let closed = HeaderName.isTrue(headers.first(name: HeaderName.closed))
        switch status {
        case .ok:
            break
        case .noContent:
            // A long-poll's 204 at the end of a closed stream is the EOF signal, forever; any
            // other 204 means "nothing yet" and must reach the upstream again.
            return closed && !control.isPrivate || closed && credentialed ? .immutable : .doNotStore
        default:
            return .doNotStore
        }
        if control.noStore || (control.isPrivate && !credentialed) { return .doNotStore }
        let upToDate = HeaderName.isTrue(headers.first(name: HeaderName.upToDate))
        if closed || !upToDate { return .immutable }
        if control.noCache { return .expiring(fresh: .zero, stale: .zero) }
        let fresh = lifetime(control.maxAge ?? 0)
        let stale = control.staleWhileRevalidate.map(lifetime) ?? defaultStale
        return .expiring(fresh: fresh, stale: stale)
    }

    /// The longest lifetime the edge gives a tail answer, whatever the upstream says.
    public static let maxLifetimeSeconds = 365 * 86_400

    /// A directive's seconds as a lifetime, clamped to `0...maxLifetimeSeconds`: a huge
    /// `max-age` would overflow `TimeAmount` (nanoseconds in an Int64) and trap.
    static func lifetime(_ seconds: Int) -> TimeAmount {
        .seconds(Int64(min(max(0, seconds), maxLifetimeSeconds)))
    }
}
