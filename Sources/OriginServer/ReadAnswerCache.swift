import DurableStreams
import NIOConcurrencyHelpers
import ServerSupport
import StreamStore

/// Catch-up answers kept as bytes while they are asked for: readers that catch up from the same
/// offset (a new wave of clients, an edge revalidating, a poller of the tail) get the same
/// serialized answer instead of a head, an ETag and (for JSON) an array built again.
///
/// The store is still read for every request; the key is what that read found (the stream's
/// internal id, the range, whether it reached the tail and a closure), which fixes every byte of
/// the answer for a stream without TTL or expiry (their headers and `Cache-Control` change with
/// the clock, so they are never kept). A re-created stream has another id, a tail that moved
/// gives another range, and a deleted stream is refused by the store before the cache is asked.
/// Bounded in entries and bytes; the oldest entry goes first.
final class ReadAnswerCache: Sendable {
    struct Key: Hashable, Sendable {
        var id: String
        var start: StreamOffset
        var end: StreamOffset
        var upToDate: Bool
        var closed: Bool
    }

    /// Answers larger than this are not kept: their head is a small part of their cost.
    let maxAnswerBytes: Int
    let maxEntries: Int
    let maxBytes: Int

    private struct State {
        var entries: [Key: EncodedResponse] = [:]
        /// Insertion order: `fifo[head...]` are the keys of `entries`, oldest first.
        var fifo: [Key] = []
        var head = 0
        var bytes = 0
    }

    private let state = NIOLockedValueBox(State())

    init(maxEntries: Int = 512, maxBytes: Int = 8 << 20, maxAnswerBytes: Int = 64 << 10) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = maxBytes
        self.maxAnswerBytes = maxAnswerBytes
    }

    func get(_ key: Key) -> EncodedResponse? {
        state.withLockedValue { $0.entries[key] }
    }

    func put(_ key: Key, _ answer: EncodedResponse) {
        let cost = Self.cost(answer)
        guard cost <= maxAnswerBytes, cost <= maxBytes else { return }
        let maxEntries = self.maxEntries, maxBytes = self.maxBytes
        state.withLockedValue { state in
            guard state.entries[key] == nil else { return }
            while !state.entries.isEmpty, state.bytes + cost > maxBytes || state.entries.count >= maxEntries {
                Self.evictOldest(&state)
            }
            state.entries[key] = answer
            state.bytes += cost
            state.fifo.append(key)
        }
    }

    /// Entries and bytes held (for tests).
    var stats: (entries: Int, bytes: Int) {
        state.withLockedValue { ($0.entries.count, $0.bytes) }
    }

    private static func evictOldest(_ state: inout State) {
        let oldest = state.fifo[state.head]
        state.head += 1
        if let gone = state.entries.removeValue(forKey: oldest) { state.bytes -= cost(gone) }
        // Drop the consumed prefix now and then, so the queue stays about as long as the cache.
        if state.head >= 64, state.head * 2 >= state.fifo.count {
            state.fifo.removeFirst(state.head)
            state.head = 0
        }
    }

    private static func cost(_ answer: EncodedResponse) -> Int {
        answer.headLines.readableBytes + answer.body.readableBytes
    }
}
