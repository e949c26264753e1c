/// The busiest keys of an unbounded key space in bounded memory: the Space-Saving sketch
/// (Metwally, Agrawal, El Abbadi, 2005). At most `capacity` keys are tracked; a key not tracked
/// takes the place of the one with the smallest count and inherits that count as its possible
/// overcount (`error`). Every key whose true count exceeds total ÷ capacity is guaranteed to be
/// tracked, and a tracked key's true count lies in `count - error ... count`.
///
/// Each tracked key also carries `Tally`, the caller's own figures for it (bytes, hits, …),
/// counted from the moment the key was last taken in: exact for keys that stayed tracked,
/// a lower bound for the rest.
///
/// `@inlinable`, so that the modules that use it get a version specialised to their key and
/// tally: generic, a dictionary lookup per request went through witness tables.
public struct HeavyHitters<Key: Hashable & Sendable, Tally: Sendable>: Sendable {
    public struct Entry: Sendable {
        public var key: Key
        /// Weight recorded for the key, plus `error`.
        public var count: Int
        /// How much of `count` may belong to keys this one displaced.
        public var error: Int
        public var tally: Tally

        @usableFromInline
        init(key: Key, count: Int, error: Int, tally: Tally) {
            self.key = key
            self.count = count
            self.error = error
            self.tally = tally
        }
    }

    public let capacity: Int
    @usableFromInline let makeTally: @Sendable () -> Tally
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var index: [Key: Int] = [:]
    /// The sum of every weight recorded, tracked or not.
    public var total: Int { recorded }
    @usableFromInline var recorded = 0

    public init(capacity: Int, tally: @escaping @Sendable () -> Tally) {
        precondition(capacity > 0, "a sketch tracks at least one key")
        self.capacity = capacity
        self.makeTally = tally
        entries.reserveCapacity(capacity)
    }

    /// Counts `weight` for `key` and lets `update` change its tally.
    @inlinable
    public mutating func record(_ key: Key, weight: Int = 1, _ update: (inout Tally) -> Void = { _ in }) {
        let weight = max(0, weight)
        recorded &+= weight
        if let position = index[key] {
            entries[position].count &+= weight
            update(&entries[position].tally)
            return
        }
        if entries.count < capacity {
            index[key] = entries.count
            var tally = makeTally()
            update(&tally)
            entries.append(Entry(key: key, count: weight, error: 0, tally: tally))
            return
        }
        // Full: the least counted key makes room. A linear scan: capacities are small (tens to a
        // few hundred) and only keys not tracked pay it.
        var smallest = 0
        for position in entries.indices where entries[position].count < entries[smallest].count {
            smallest = position
        }
        let displaced = entries[smallest]
        index[displaced.key] = nil
        index[key] = smallest
        var tally = makeTally()
        update(&tally)
        entries[smallest] = Entry(key: key, count: displaced.count &+ weight, error: displaced.count, tally: tally)
    }

    /// Changes the tally of `key` if it is tracked, without counting anything.
    @inlinable
    public mutating func updateIfTracked(_ key: Key, _ update: (inout Tally) -> Void) {
        if let position = index[key] { update(&entries[position].tally) }
    }

    /// The `limit` most counted keys, most counted first (ties in no particular order).
    public func top(_ limit: Int) -> [Entry] {
        Array(entries.sorted { $0.count > $1.count }.prefix(max(0, limit)))
    }

    /// How many keys are tracked now (≤ `capacity`).
    public var count: Int { entries.count }
}
