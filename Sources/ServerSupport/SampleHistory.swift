import NIOCore

/// A sample a `SampleHistory` can roll up into a longer interval.
public protocol HistorySample: Sendable {
    /// Folds the sample of the next interval into this one: counts add up, gauges take the later
    /// value (one minute made of its seconds).
    mutating func absorb(_ later: Self)
}

/// Recent samples in bounded memory: one per second for the last `secondCapacity` seconds, and
/// one per minute for the last `minuteCapacity` minutes, so a dashboard opened now can draw the
/// last hour and day at once. Times are whole Unix seconds, given by the caller (pure: no clock).
public struct SampleHistory<Sample: HistorySample>: Sendable {
    /// One interval's sample: it starts at `time` and covers `span` seconds (more than the
    /// interval when the sampler was late; rates divide by `span`).
    public struct Stamped: Sendable {
        public var time: Int64
        public var span: Int64
        public var sample: Sample
    }

    public let secondCapacity: Int
    public let minuteCapacity: Int
    private var secondSamples: CircularBuffer<Stamped>
    private var minuteSamples: CircularBuffer<Stamped>
    /// The minute being built from seconds; moved to `minutes` when a later minute begins.
    private var openMinute: Stamped?

    public init(secondCapacity: Int = 3600, minuteCapacity: Int = 1440) {
        precondition(secondCapacity > 0 && minuteCapacity > 0, "a history keeps at least one sample of each")
        self.secondCapacity = secondCapacity
        self.minuteCapacity = minuteCapacity
        secondSamples = CircularBuffer(initialCapacity: min(secondCapacity, 64))
        minuteSamples = CircularBuffer(initialCapacity: min(minuteCapacity, 64))
    }

    /// The time of the newest sample, if any.
    public var latest: Int64? { secondSamples.last?.time }

    /// Adds the sample of the interval ending at `time`, which began after the previous sample's
    /// end (its span is the gap, at least 1). A time not after the newest is ignored: a clock
    /// stepped back must not reorder history.
    public mutating func record(_ sample: Sample, at time: Int64) {
        let span: Int64
        if let last = secondSamples.last {
            guard time > last.time else { return }
            span = time - last.time
        } else {
            span = 1
        }
        if secondSamples.count == secondCapacity { secondSamples.removeFirst() }
        secondSamples.append(Stamped(time: time, span: span, sample: sample))

        let minute = time - ((time % 60) + 60) % 60
        if var open = openMinute, open.time == minute {
            open.sample.absorb(sample)
            open.span += span
            openMinute = open
        } else {
            if let done = openMinute {
                if minuteSamples.count == minuteCapacity { minuteSamples.removeFirst() }
                minuteSamples.append(done)
            }
            openMinute = Stamped(time: minute, span: span, sample: sample)
        }
    }

    /// Per-second samples newer than `time` (all of them for `nil`), oldest first.
    public func seconds(after time: Int64? = nil) -> [Stamped] {
        guard let time else { return Array(secondSamples) }
        // Samples are in time order: walk back from the newest to the first one to keep.
        var start = secondSamples.endIndex
        while start > secondSamples.startIndex, secondSamples[secondSamples.index(before: start)].time > time {
            start = secondSamples.index(before: start)
        }
        return Array(secondSamples[start...])
    }

    /// Per-minute samples, oldest first, the minute in progress last (its `span` says how much
    /// of it has passed).
    public func minutes() -> [Stamped] {
        var all = Array(minuteSamples)
        if let openMinute { all.append(openMinute) }
        return all
    }
}
