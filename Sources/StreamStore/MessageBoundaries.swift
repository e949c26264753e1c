/// Where a stream's messages end, for the stores that frame messages (JSON streams): a read may
/// only start at a message boundary and never ends inside a message. Byte streams keep none,
/// and any position up to the tail is a boundary.
struct MessageBoundaries: Sendable {
    /// End position of every message, ascending; `nil` for a byte stream.
    private(set) var ends: [UInt64]?

    init(framed: Bool) {
        ends = framed ? [] : nil
    }

    init(ends: [UInt64]) {
        self.ends = ends
    }

    var isFramed: Bool { ends != nil }
    var count: Int { ends?.count ?? 0 }

    /// Records that a message ends at `position` (ignored for byte streams).
    mutating func append(_ position: UInt64) {
        ends?.append(position)
    }

    /// Forgets messages ending beyond `position` (an append that did not commit).
    mutating func truncate(to position: UInt64) {
        guard let current = ends else { return }
        let keep = Self.search(current, position)
        ends = Array(current[..<(keep.found ? keep.index + 1 : keep.index)])
    }

    /// Whether `position`, at or before `length`, is somewhere a read may start.
    func isBoundary(_ position: UInt64, length: UInt64) -> Bool {
        guard position <= length else { return false }
        guard let ends, position != 0 else { return true }
        return Self.search(ends, position).found
    }

    /// Where a read from `start` ends in a stream of `length` bytes: `maxBytes` later, moved back
    /// to a message boundary for framed streams but never short of one whole message.
    func readEnd(from start: UInt64, maxBytes: Int, length: UInt64) -> UInt64 {
        let limit = min(length, start + UInt64(max(maxBytes, 1)))
        guard let ends, limit < length else { return limit }
        let (index, found) = Self.search(ends, limit)
        if found { return limit }
        // `index` is the first message end beyond `limit`; step back one unless that is at or before `start`.
        if index > 0, ends[index - 1] > start { return ends[index - 1] }
        return index < ends.count ? ends[index] : length
    }

    /// First index whose element is >= `value`, and whether it is equal.
    static func search(_ array: [UInt64], _ value: UInt64) -> (index: Int, found: Bool) {
        var low = 0
        var high = array.count
        while low < high {
            let mid = (low + high) / 2
            if array[mid] < value { low = mid + 1 } else { high = mid }
        }
        return (low, low < array.count && array[low] == value)
    }
}
