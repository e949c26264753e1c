import DurableStreams
import Foundation

/// The kept form of the registry's state (`SubscriptionJournal`): per subscription what §6–7
/// require to survive a restart — its configuration (as a `PUT` body, parsed again on load, so
/// a kept file goes through the same validation as a request), its links and acked offsets, its
/// generation, and its retry schedule (wall-clock, since the monotonic clock restarts).
struct SubscriptionSnapshot: Codable {
    struct Link: Codable {
        var path: String
        var explicit: Bool
        var glob: Bool
        var acked: String
    }

    struct Subscription: Codable {
        var id: String
        var configuration: String
        var createdAt: String
        var baseURL: String
        var generation: Int
        var failures: Int
        /// Unix milliseconds when the next delivery attempt may start.
        var retryAtMilliseconds: Int64?
        var links: [Link]
    }

    var version = 1
    var subscriptions: [Subscription]
}

extension SubscriptionConfiguration {
    /// The configuration as the `PUT` body that makes it.
    var requestBody: [UInt8] {
        var object: [String: Any] = ["type": typeName, "streams": streams, "lease_ttl_ms": leaseMilliseconds]
        if let pattern { object["pattern"] = pattern.description }
        if let description { object["description"] = description }
        switch delivery {
        case .webhook(let url): object["webhook"] = ["url": url.description]
        case .pullWake(let stream): object["wake_stream"] = stream
        }
        return SubscriptionJSON.encode(object)
    }
}
