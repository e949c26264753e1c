import NIOConcurrencyHelpers
import NIOCore

/// Counts an event that may come in floods (connections refused at the cap) and says when to
/// report it: the first at once, then at most once per `interval`, with how many there were
/// since the last report. A plain value; `ThrottledWarning` puts it behind a lock and a logger.
public struct ThrottledReport: Sendable {
    public let interval: TimeAmount
    private var lastReport: NIODeadline?
    private var unreported = 0

    public init(interval: TimeAmount) {
        self.interval = interval
    }

    /// One more event; the number to report now, or `nil` to stay quiet.
    public mutating func record(now: NIODeadline) -> Int? {
        unreported += 1
        if let lastReport, now < lastReport + interval { return nil }
        lastReport = now
        defer { unreported = 0 }
        return unreported
    }
}

/// A `ThrottledReport` shared by a server's event loops: `record()` from anywhere; `report`
/// is called (on the recording thread) with the count whenever one is due.
public final class ThrottledWarning: Sendable {
    private let state: NIOLockedValueBox<ThrottledReport>
    private let report: @Sendable (Int) -> Void

    public init(interval: TimeAmount, report: @escaping @Sendable (Int) -> Void) {
        state = NIOLockedValueBox(ThrottledReport(interval: interval))
        self.report = report
    }

    public func record() {
        let now = NIODeadline.now()
        if let count = state.withLockedValue({ $0.record(now: now) }) { report(count) }
    }
}
