import NIOCore

/// Forward-auth decisions remembered for `lifetime` each, at most `capacity` of them. A plain
/// value, told the time by its caller, so expiry is testable without waiting.
///
/// Every entry lives equally long, so the order entries were stored in is the order they expire
/// in: one queue serves both "drop the expired" and "drop the oldest". A full cache first drops
/// what has expired, then the oldest live entries, one per new entry.
public struct ForwardAuthDecisionCache: Sendable {
    public let capacity: Int
    public let lifetime: TimeAmount

    private struct Entry: Sendable {
        var decision: ForwardAuthDecision
        var expires: NIODeadline
        /// Which store this is, so a queue slot left by an earlier store of the key is skipped.
        var generation: UInt64
    }

    private var entries: [ForwardAuthCheck.Key: Entry] = [:]
    /// Keys in the order they were stored; entries before `head` are gone.
    private var order: [(key: ForwardAuthCheck.Key, generation: UInt64)] = []
    private var head = 0
    private var generation: UInt64 = 0

    /// - Parameters:
    ///   - capacity: most decisions kept (at least 1).
    ///   - lifetime: how long each is used; zero keeps nothing.
    public init(capacity: Int = 10_000, lifetime: TimeAmount) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    public var count: Int { entries.count }

    /// The decision stored for `key`, if it has not expired by `now`.
    public mutating func decision(for key: ForwardAuthCheck.Key, now: NIODeadline) -> ForwardAuthDecision? {
        guard let entry = entries[key] else { return nil }
        guard now < entry.expires else {
            entries[key] = nil
            return nil
        }
        return entry.decision
    }

    /// Remembers `decision` for `key` from `now` on; failures and a zero lifetime are not kept.
    public mutating func store(_ decision: ForwardAuthDecision, for key: ForwardAuthCheck.Key, now: NIODeadline) {
        guard decision.isCacheable, lifetime > .zero else { return }
        dropExpired(now: now)
        if entries[key] == nil {
            while entries.count >= capacity, dropOldest() {}
        }
        generation &+= 1
        entries[key] = Entry(decision: decision, expires: now + lifetime, generation: generation)
        order.append((key, generation))
        compact()
    }

    /// Drops entries from the front of the queue while they have expired.
    private mutating func dropExpired(now: NIODeadline) {
        while head < order.count {
            let slot = order[head]
            if let entry = entries[slot.key], entry.generation == slot.generation {
                guard entry.expires <= now else { return }
                entries[slot.key] = nil
            }
            head += 1
        }
    }

    /// Drops the oldest live entry; `false` when there is none.
    private mutating func dropOldest() -> Bool {
        while head < order.count {
            let slot = order[head]
            head += 1
            if let entry = entries[slot.key], entry.generation == slot.generation {
                entries[slot.key] = nil
                return true
            }
        }
        return false
    }

    /// Keeps the queue within twice the capacity: slots of replaced or expired-on-lookup entries
    /// stay in it until they reach the front.
    private mutating func compact() {
        if head > order.count / 2 || order.count - head > 2 * capacity {
            order = order[head...].filter { slot in entries[slot.key]?.generation == slot.generation }
            head = 0
        }
    }
}
