import DurableStreams
import NIOConcurrencyHelpers

/// What the edge has learnt about each stream from the traffic passing through (append
/// answers, reads, long-polls): the newest tail seen, and whether the stream is closed. A cached
/// tail answer that ends before a known newer tail, or that predates a known closure, is out of
/// date, whatever its max-age says.
final class TailTracker: Sendable {
    struct Known: Sendable, Equatable {
        var tail: StreamOffset
        var closed: Bool
    }

    private let streams = NIOLockedValueBox<[String: Known]>([:])
    /// Bounded: the map is only a hint, so when it is full it is simply cleared.
    private let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Records a tail (and closure) reported for `stream`; only ever moves forward.
    func observe(_ stream: String, _ offset: StreamOffset, closed: Bool) {
        streams.withLockedValue { streams in
            if var known = streams[stream] {
                known.tail = max(known.tail, offset)
                known.closed = known.closed || closed
                streams[stream] = known
                return
            }
            if streams.count >= capacity { streams.removeAll(keepingCapacity: true) }
            streams[stream] = Known(tail: offset, closed: closed)
        }
    }

    func known(_ stream: String) -> Known? {
        streams.withLockedValue { $0[stream] }
    }

    func forget(_ stream: String) {
        _ = streams.withLockedValue { $0.removeValue(forKey: stream) }
    }
}
