import DurableStreams
import Foundation

/// The JSON bodies of §6–7, built from a subscription's state. Dictionaries serialised with
/// sorted keys: stable bytes for a stable state.
enum SubscriptionJSON {
    static func encode(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }

    /// Links sorted by path, each with its cursor; with a snapshot, the wake's view (tail and
    /// whether there is work).
    static func streams(_ links: [String: StreamLink], snapshot: [String: StreamOffset]? = nil) -> [[String: Any]] {
        links.keys.sorted().map { path in
            let link = links[path]!
            var item: [String: Any] = ["path": path, "link_type": link.linkType, "acked_offset": link.acked.description]
            if let snapshot {
                let tail = snapshot[path] ?? link.tail
                item["tail_offset"] = tail.description
                item["has_pending"] = tail > link.acked
            }
            return item
        }
    }

    static func subscription(id: String, _ configuration: SubscriptionConfiguration, machine: WakeMachine, createdAt: String, signing: [String: Any]?) -> [String: Any] {
        var object: [String: Any] = [
            "id": id, "subscription_id": id, "type": configuration.typeName,
            "pattern": configuration.pattern?.description ?? NSNull(),
            "streams": streams(machine.links),
            "wake_stream": configuration.wakeStream ?? NSNull(),
            "lease_ttl_ms": configuration.leaseMilliseconds,
            "created_at": createdAt,
            "status": machine.status,
            "description": configuration.description ?? NSNull(),
        ]
        if case .webhook(let url) = configuration.delivery {
            var webhook: [String: Any] = ["url": url.description]
            if let signing { webhook["signing"] = signing }
            object["webhook"] = webhook
        } else {
            object["webhook"] = NSNull()
        }
        return object
    }

    /// The wake event appended to a pull-wake subscription's wake stream (§7.2).
    static func wakeEvent(id: String, wake: Wake, stream: String, unixMilliseconds: Int64) -> [UInt8] {
        encode(["type": "wake", "subscription_id": id, "stream": stream, "generation": wake.generation, "ts": unixMilliseconds])
    }

    /// ISO 8601 with milliseconds, UTC, as `created_at` shows it.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
