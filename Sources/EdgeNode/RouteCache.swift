import NIOConcurrencyHelpers
import NIOCore

/// The `[[route]]` answers the edge keeps (those `RouteCachePolicy` allows, and by the same
/// rules the origin's key set, `ControlPath.isKeySet`), apart from the
/// stream cache: route answers follow plain HTTP freshness, not the protocol's, and must not
/// evict stream entries. Bounded by `budgetBytes`; when full, the oldest stored entry goes
/// first (route answers are few and short-lived, so first in, first out is enough). An entry
/// past its freshness is dropped when next looked up, and is never served: there is no
/// revalidation and no stale serving for routes.
final class RouteCache: Sendable {
    struct Stats: Sendable, Equatable {
        /// The total cost of the stored entries, never above `budget`.
        var bytes: Int
        var entries: Int
        /// Entries dropped to make room (not expiries or replacements).
        var evictions: Int
        var budget: Int
    }

    /// What each entry costs on top of its bytes (the index slot, the queue item, the fields).
    static let entryOverhead = 96

    let budgetBytes: Int
    private let state = NIOLockedValueBox(State())

    init(budgetBytes: Int) {
        precondition(budgetBytes >= 0, "a cache budget cannot be negative")
        self.budgetBytes = budgetBytes
    }

    /// Whether anything can be stored at all (a budget of 0 turns route caching off).
    var isEnabled: Bool { budgetBytes > 0 }

    /// The entry for `key` if it is still fresh at `now`; an expired one is dropped.
    func get(_ key: String, now: NIODeadline) -> CachedResponse? {
        state.withLockedValue { $0.get(key, now: now) }
    }

    /// Stores `response` under `key` (its `freshUntil` set), replacing any entry for the key and
    /// evicting the oldest until it fits. An entry costing more than a quarter of the budget is
    /// not stored, so that one large answer cannot empty the cache; returns whether it was.
    @discardableResult
    func put(_ key: String, _ response: CachedResponse) -> Bool {
        let cost = Self.cost(key, response)
        let budget = budgetBytes
        return state.withLockedValue { $0.put(key, response, cost: cost, budget: budget) }
    }

    var stats: Stats {
        let budget = budgetBytes
        return state.withLockedValue { Stats(bytes: $0.bytes, entries: $0.entries.count, evictions: $0.evictions, budget: budget) }
    }

    static func cost(_ key: String, _ response: CachedResponse) -> Int {
        var total = entryOverhead + key.utf8.count + response.body.readableBytes + response.encoded.headLines.readableBytes
        for (name, value) in response.headers { total += name.utf8.count + value.utf8.count }
        return total
    }

    /// Only touched under the lock.
    private struct State: Sendable {
        struct Entry: Sendable {
            var response: CachedResponse
            var cost: Int
            /// Which store of the key this is: queue items of earlier stores are stale.
            var sequence: Int
        }

        var entries: [String: Entry] = [:]
        /// Keys in the order they were stored. A key stored again or dropped leaves its old item
        /// behind; such items are skipped when evicting and compacted away before they can
        /// outnumber the live ones, so the queue stays within a small multiple of `entries`.
        var order = CircularBuffer<(key: String, sequence: Int)>()
        var nextSequence = 0
        var bytes = 0
        var evictions = 0

        mutating func get(_ key: String, now: NIODeadline) -> CachedResponse? {
            guard let entry = entries[key] else { return nil }
            guard let freshUntil = entry.response.freshUntil, now < freshUntil else {
                remove(key)
                return nil
            }
            return entry.response
        }

        mutating func put(_ key: String, _ response: CachedResponse, cost: Int, budget: Int) -> Bool {
            remove(key)
            guard cost <= budget / 4 else { return false }
            while bytes + cost > budget, let oldest = order.popFirst() {
                guard entries[oldest.key]?.sequence == oldest.sequence else { continue }
                remove(oldest.key)
                evictions += 1
            }
            nextSequence += 1
            entries[key] = Entry(response: response, cost: cost, sequence: nextSequence)
            order.append((key, nextSequence))
            bytes += cost
            compactIfNeeded()
            return true
        }

        mutating func remove(_ key: String) {
            guard let entry = entries.removeValue(forKey: key) else { return }
            bytes -= entry.cost
        }

        private mutating func compactIfNeeded() {
            guard order.count > 2 * entries.count + 64 else { return }
            let live = order.filter { entries[$0.key]?.sequence == $0.sequence }
            order = CircularBuffer(live)
        }
    }
}
