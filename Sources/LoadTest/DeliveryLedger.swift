/// One writer's sequence as one reader saw it: which numbers arrived, how often, in what order.
public struct SequenceTracker: Sendable, Equatable {
    private var seen: [UInt64] = []
    /// The first number received, if any.
    public private(set) var first: Int?
    /// The highest number received so far, -1 before any.
    public private(set) var highest = -1
    public private(set) var received = 0
    public private(set) var distinct = 0
    public private(set) var duplicated = 0
    public private(set) var outOfOrder = 0

    public init() {}

    /// What one arrival was.
    public enum Arrival: Equatable, Sendable {
        case inOrder
        /// Already received before.
        case duplicate
        /// New, but after a higher number (something overtook it).
        case outOfOrder
    }

    @discardableResult
    public mutating func receive(_ seq: Int) -> Arrival {
        precondition(seq >= 0)
        received += 1
        if first == nil { first = seq }
        let word = seq >> 6
        let bit = UInt64(1) << UInt64(seq & 63)
        if word >= seen.count { seen.append(contentsOf: repeatElement(0, count: word + 1 - seen.count)) }
        if seen[word] & bit != 0 {
            duplicated += 1
            return .duplicate
        }
        seen[word] |= bit
        distinct += 1
        if seq < highest {
            outOfOrder += 1
            return .outOfOrder
        }
        highest = seq
        return .inOrder
    }

    public func contains(_ seq: Int) -> Bool {
        let word = seq >> 6
        return seq >= 0 && word < seen.count && seen[word] & (UInt64(1) << UInt64(seq & 63)) != 0
    }

    /// Distinct numbers received in `range`.
    public func count(in range: Range<Int>) -> Int {
        guard !range.isEmpty else { return 0 }
        var total = 0
        for seq in range where contains(seq) { total += 1 }
        return total
    }

    /// True when every number in `start..<end` has arrived.
    public func hasAll(from start: Int, to end: Int) -> Bool {
        guard end > start else { return true }
        guard end <= highest + 1 else { return false }
        // Runs on every delivery while a reader drains: when nothing outside `start..<end`
        // arrived, the distinct count answers without a scan.
        if let first, first >= start, highest < end, outOfOrder == 0 { return distinct == end - start }
        return count(in: start..<end) == end - start
    }
}

/// What a reader should have received from one writer: `start..<end`.
public struct ExpectedRange: Sendable, Equatable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
}

/// Everything one reader received, per writer of its stream, and the verdict once the run is over.
public struct DeliveryLedger: Sendable {
    public let stream: Int
    public private(set) var writers: [SequenceTracker]
    /// Lines that were not our messages or named another stream or an unknown writer.
    public private(set) var corrupt = 0
    public private(set) var bytes = 0

    public init(stream: Int, writers: Int) {
        self.stream = stream
        self.writers = Array(repeating: SequenceTracker(), count: writers)
    }

    /// Records one received line; returns the message if it was a valid one for this stream.
    public mutating func receive(line: ArraySlice<UInt8>) -> LoadMessage? {
        bytes += line.count + 1
        guard let message = LoadMessage.parse(line: line), message.stream == stream, writers.indices.contains(message.writer) else {
            corrupt += 1
            return nil
        }
        writers[message.writer].receive(message.seq)
        return message
    }

    /// The verdict for expected ranges, one per writer.
    public func audit(expected: [ExpectedRange]) -> DeliveryAudit {
        var audit = DeliveryAudit()
        audit.corrupt = corrupt
        for (tracker, range) in zip(writers, expected) {
            let want = max(0, range.end - range.start)
            audit.expected += want
            audit.lost += want - tracker.count(in: range.start..<max(range.start, range.end))
            audit.received += tracker.received
            audit.duplicated += tracker.duplicated
            audit.outOfOrder += tracker.outOfOrder
        }
        return audit
    }
}

/// The counts for one reader (or, added up, for a run).
public struct DeliveryAudit: Sendable, Equatable {
    public var expected = 0
    public var received = 0
    public var lost = 0
    public var duplicated = 0
    public var outOfOrder = 0
    public var corrupt = 0

    public init() {}

    public var hasProblems: Bool { lost > 0 || duplicated > 0 || outOfOrder > 0 || corrupt > 0 }

    public static func + (left: DeliveryAudit, right: DeliveryAudit) -> DeliveryAudit {
        var sum = left
        sum.expected += right.expected
        sum.received += right.received
        sum.lost += right.lost
        sum.duplicated += right.duplicated
        sum.outOfOrder += right.outOfOrder
        sum.corrupt += right.corrupt
        return sum
    }
}
