import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServerSupport

/// One stored answer.
public struct CachedResponse: Sendable {
    /// What never changes once an entry is made, in one object: every hit copies its entry out of
    /// the cache (under the cache's lock), and one reference to retain costs less than the dozen
    /// the fields held on their own.
    private final class Content: Sendable {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let body: ByteBuffer
        let encoded: EncodedResponse
        let facts: ReadFacts

        init(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer, facts: ReadFacts) {
            self.status = status
            self.headers = headers
            self.body = body
            self.encoded = EncodedResponse(HTTPResponseHead(version: .http1_1, status: status, headers: headers), body: body)
            self.facts = facts
        }
    }

    private let content: Content

    public var status: HTTPResponseStatus { content.status }
    /// As received from upstream (hop-by-hop headers already removed by the caller).
    public var headers: HTTPHeaders { content.headers }
    public var body: ByteBuffer { content.body }
    /// The response as bytes, serialized once when stored: a hit writes them as they are, plus
    /// its own `X-Cache` and `Age` lines.
    public var encoded: EncodedResponse { content.encoded }
    /// When it was stored or last revalidated.
    public var storedAt: NIODeadline
    /// `nil` = immutable (a full chunk, or the end of a closed stream): fresh until evicted.
    /// Otherwise the entry is fresh until this instant (exclusive), then stale.
    public var freshUntil: NIODeadline?
    /// The end (exclusive) of the window past `freshUntil` in which the entry may still be served
    /// stale (stale-while-revalidate / stale-if-error); `nil` = not at all.
    public var staleUntil: NIODeadline?
    /// The protocol facts of `headers` (end offset, closure, ETag), parsed once when stored.
    public var facts: ReadFacts { content.facts }
    /// The ETag header value, if any.
    public var etag: String? { facts.etag }

    public init(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer,
        storedAt: NIODeadline,
        freshUntil: NIODeadline?,
        staleUntil: NIODeadline?,
        etag: String?,
        facts: ReadFacts? = nil
    ) {
        // An upstream answer's facts were parsed when it arrived; only a bare entry parses its own.
        var facts = facts ?? ReadFacts(headers)
        facts.etag = etag
        self.content = Content(status: status, headers: headers, body: body, facts: facts)
        self.storedAt = storedAt
        self.freshUntil = freshUntil
        self.staleUntil = staleUntil
    }

    /// What every entry costs on top of its bytes: the node, the index slots, the response's fixed fields.
    public static let entryOverhead = 64

    /// Bytes this entry costs against the budget when stored under `key`: body bytes, every header
    /// name and value, the serialized head, the key's own bytes and a fixed ``entryOverhead``.
    public func cost(for key: CacheKey) -> Int {
        var total = Self.entryOverhead + body.readableBytes + encoded.headLines.readableBytes
        for (name, value) in headers {
            total += name.utf8.count + value.utf8.count
        }
        total += key.stream.utf8.count + key.variant.utf8.count + (key.credentials?.utf8.count ?? 0)
        return total
    }
}

/// How usable a cached entry is at a given instant.
public enum CacheFreshness: Sendable {
    /// Serve as is.
    case fresh
    /// Past `freshUntil` but inside the stale window: may be served while revalidating or when upstream fails.
    case stale
    /// Past `staleUntil`, or past `freshUntil` with no stale window: must not be served without revalidation.
    case expired
}

extension CachedResponse {
    /// The entry's freshness at `now`. Intervals are half-open, as in RFC 9111 (a response whose age
    /// equals its max-age is already stale): fresh before `freshUntil`, stale from `freshUntil` until
    /// just before `staleUntil`, expired from `staleUntil` on.
    public func freshness(at now: NIODeadline) -> CacheFreshness {
        guard let freshUntil else { return .fresh }
        if now < freshUntil { return .fresh }
        if let staleUntil, now < staleUntil { return .stale }
        return .expired
    }
}

/// A thread-safe, byte-budgeted cache with SIEVE eviction (Zhang et al., NSDI '24): a FIFO queue
/// with one "visited" bit per entry and a hand that moves from the tail toward the head; a hit sets
/// the bit; eviction clears set bits as the hand passes and evicts the first entry whose bit is
/// clear. Scan-resistant and lock-cheap (a hit only sets a bit, it never relinks the queue).
public final class ResponseCache: Sendable {
    public struct Stats: Sendable, Equatable {
        /// The total cost of the stored entries, never above `budget`.
        public var bytes: Int
        public var entries: Int
        /// Entries dropped to make room (not removals, purges or replacements).
        public var evictions: Int
        public var budget: Int

        public init(bytes: Int, entries: Int, evictions: Int, budget: Int) {
            self.bytes = bytes
            self.entries = entries
            self.evictions = evictions
            self.budget = budget
        }
    }

    public let budgetBytes: Int
    private let state: NIOLockedValueBox<SieveState>

    public init(budgetBytes: Int) {
        precondition(budgetBytes >= 0, "a cache budget cannot be negative")
        self.budgetBytes = budgetBytes
        self.state = NIOLockedValueBox(SieveState())
    }

    /// The entry for `key`, marking it visited so the next eviction pass spares it.
    public func get(_ key: CacheKey) -> CachedResponse? {
        state.withLockedValue { $0.get(key) }
    }

    /// Stores `response` under `key`, replacing any entry for the key, then evicts by SIEVE until
    /// the total cost fits the budget. An entry whose own cost exceeds the budget is not stored and
    /// `false` is returned; an older entry for the key is dropped all the same, since the caller
    /// meant to supersede it.
    @discardableResult
    public func put(_ key: CacheKey, _ response: CachedResponse) -> Bool {
        // Costing walks the headers: do it outside the lock.
        let cost = response.cost(for: key)
        let budget = budgetBytes
        return state.withLockedValue { $0.put(key, response, cost: cost, budget: budget) }
    }

    /// Refreshes an entry after a successful revalidation (upstream 304): new
    /// `storedAt`/`freshUntil`/`staleUntil`, same body and headers. Does nothing if the key is absent.
    public func refresh(_ key: CacheKey, storedAt: NIODeadline, freshUntil: NIODeadline?, staleUntil: NIODeadline?) {
        state.withLockedValue { $0.refresh(key, storedAt: storedAt, freshUntil: freshUntil, staleUntil: staleUntil) }
    }

    public func remove(_ key: CacheKey) {
        state.withLockedValue { _ = $0.remove(key) }
    }

    /// Purges every entry of one stream (all variants and credentials), as when a DELETE passes
    /// through. Costs O(entries of that stream), not O(cache). Returns how many entries were dropped.
    @discardableResult
    public func purge(stream: String) -> Int {
        state.withLockedValue { $0.purge(stream: stream) }
    }

    public var stats: Stats {
        let budget = budgetBytes
        return state.withLockedValue {
            Stats(bytes: $0.bytes, entries: $0.index.count, evictions: $0.evictions, budget: budget)
        }
    }

    /// Walks the whole structure and reports the first inconsistency, or `nil`. For tests.
    func invariantViolation() -> String? {
        state.withLockedValue { $0.invariantViolation() }
    }
}

/// The cache's state, only ever touched under the lock. Nodes live in one array and link by index,
/// so the queue costs no allocation per operation once the array has grown; freed slots are reused.
/// The head holds the newest entry, the tail the oldest.
private struct SieveState: Sendable {
    struct Node: Sendable {
        var key: CacheKey
        var response: CachedResponse
        var cost: Int
        var visited: Bool
        /// Toward the head (newer entries); `-1` at the head.
        var newer: Int
        /// Toward the tail (older entries); `-1` at the tail.
        var older: Int
    }

    static let none = -1

    /// Slots; `nil` for a free slot.
    var nodes: [Node?] = []
    var freeSlots: [Int] = []
    var index: [CacheKey: Int] = [:]
    var keysByStream: [String: Set<CacheKey>] = [:]
    var head = none
    var tail = none
    /// The next entry the eviction hand examines; `none` means start again at the tail.
    var hand = none
    var bytes = 0
    var evictions = 0

    mutating func get(_ key: CacheKey) -> CachedResponse? {
        guard let slot = index[key] else { return nil }
        nodes[slot]!.visited = true
        return nodes[slot]!.response
    }

    mutating func put(_ key: CacheKey, _ response: CachedResponse, cost: Int, budget: Int) -> Bool {
        // A replacement is a new object in SIEVE's terms (it joins at the head), but it inherits the
        // visited bit so that refetching a hot key does not strip its protection.
        let inheritedVisit = remove(key)?.visited ?? false
        guard cost <= budget else { return false }
        // Evict before linking the new entry, as SIEVE does, so it can never be its own victim.
        while bytes + cost > budget, tail != Self.none {
            evictOne()
        }
        let node = Node(key: key, response: response, cost: cost, visited: inheritedVisit, newer: Self.none, older: head)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            nodes[slot] = node
        } else {
            slot = nodes.count
            nodes.append(node)
        }
        if head != Self.none { nodes[head]!.newer = slot }
        head = slot
        if tail == Self.none { tail = slot }
        index[key] = slot
        keysByStream[key.stream, default: []].insert(key)
        bytes += cost
        return true
    }

    mutating func refresh(_ key: CacheKey, storedAt: NIODeadline, freshUntil: NIODeadline?, staleUntil: NIODeadline?) {
        guard let slot = index[key] else { return }
        nodes[slot]!.response.storedAt = storedAt
        nodes[slot]!.response.freshUntil = freshUntil
        nodes[slot]!.response.staleUntil = staleUntil
    }

    @discardableResult
    mutating func remove(_ key: CacheKey) -> Node? {
        guard let slot = index[key] else { return nil }
        return unlink(slot)
    }

    mutating func purge(stream: String) -> Int {
        guard let keys = keysByStream[stream] else { return 0 }
        for key in keys {
            remove(key)
        }
        return keys.count
    }

    /// SIEVE's eviction step: from the hand toward the head, wrapping to the tail, clear visited
    /// bits until an unvisited entry turns up, evict it and leave the hand on its newer neighbour.
    /// Terminates within one lap plus one step: every bit the hand passes, it clears.
    private mutating func evictOne() {
        var slot = hand == Self.none ? tail : hand
        while nodes[slot]!.visited {
            nodes[slot]!.visited = false
            let newer = nodes[slot]!.newer
            slot = newer == Self.none ? tail : newer
        }
        hand = slot
        unlink(slot)  // moves the hand on to the victim's newer neighbour
        evictions += 1
    }

    @discardableResult
    private mutating func unlink(_ slot: Int) -> Node {
        let node = nodes[slot]!
        if node.newer != Self.none { nodes[node.newer]!.older = node.older } else { head = node.older }
        if node.older != Self.none { nodes[node.older]!.newer = node.newer } else { tail = node.newer }
        if hand == slot { hand = node.newer }
        nodes[slot] = nil
        freeSlots.append(slot)
        index[node.key] = nil
        if var keys = keysByStream.removeValue(forKey: node.key.stream) {
            keys.remove(node.key)
            if !keys.isEmpty { keysByStream[node.key.stream] = keys }
        }
        bytes -= node.cost
        return node
    }

    func invariantViolation() -> String? {
        var seen = 0
        var total = 0
        var previous = Self.none
        var slot = tail
        var handSeen = hand == Self.none
        while slot != Self.none {
            guard let node = nodes[slot] else { return "slot \(slot) is linked but free" }
            guard node.older == previous else { return "slot \(slot) has a wrong back link" }
            guard index[node.key] == slot else { return "\(node.key) is not indexed at slot \(slot)" }
            guard keysByStream[node.key.stream]?.contains(node.key) == true else {
                return "\(node.key) is missing from the stream index"
            }
            if slot == hand { handSeen = true }
            seen += 1
            total += node.cost
            guard seen <= index.count else { return "the queue is longer than the index (cycle?)" }
            previous = slot
            slot = node.newer
        }
        if previous != head { return "the walk from the tail does not end at the head" }
        if seen != index.count { return "queue holds \(seen) entries, index \(index.count)" }
        if total != bytes { return "entries cost \(total) bytes, the total says \(bytes)" }
        if !handSeen { return "the hand points outside the queue" }
        let streamKeys = keysByStream.values.reduce(0) { $0 + $1.count }
        if streamKeys != index.count { return "stream index holds \(streamKeys) keys, index \(index.count)" }
        if keysByStream.values.contains(where: \.isEmpty) { return "an empty set lingers in the stream index" }
        if nodes.count - freeSlots.count != seen { return "slot accounting is off" }
        return nil
    }
}
