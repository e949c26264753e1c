import NIOCore

/// Whether a client is taking the bytes that wait for it, as a plain value: while bytes wait,
/// the client must take at least `minSendBytesPerSecond` of them on average over each
/// `sendTimeout`, or the connection is stalled. A client that stops reading, or reads a segment
/// a minute, cannot hold queued bytes in memory for long.
///
/// Used by `ConnectionTimeouts` (per HTTP/1.1 connection or HTTP/2 stream) and by
/// `SendStallGuard` (per HTTP/2 connection, whose streams share one socket).
public struct SendStallWatch: Sendable {
    public let sendTimeout: TimeAmount
    public let minSendBytesPerSecond: Int
    /// Set while bytes wait for the client: since when, and how many bytes the client had taken
    /// (`drained`) then.
    private var sending: (since: NIODeadline, drained: Int)?

    public init(sendTimeout: TimeAmount, minSendBytesPerSecond: Int) {
        self.sendTimeout = sendTimeout
        self.minSendBytesPerSecond = minSendBytesPerSecond
    }

    /// Whether output is being watched (a new count of what the client has taken is needed
    /// only when a watch starts).
    public var isWatching: Bool { sending != nil }

    /// Whether bytes wait for the client now, and how many it has taken so far in all.
    public mutating func outputChanged(pending: Bool, drained: Int, now: NIODeadline) {
        if !pending {
            sending = nil
        } else if sending == nil {
            sending = (now, drained)
        }
    }

    /// When `isStalled(now:drained:)` must next be asked, or `nil` while nothing waits.
    public var deadline: NIODeadline? { sending.map { $0.since + sendTimeout } }

    /// Whether the client has taken too little since the watch (re)started; a client that kept
    /// up the minimum rate gets another `sendTimeout`.
    public mutating func isStalled(now: NIODeadline, drained: Int) -> Bool {
        guard let sending, now >= sending.since + sendTimeout else { return false }
        let (taken, overflow) = drained.subtractingReportingOverflow(sending.drained)
        if !overflow, taken < minimumSent { return true }
        self.sending = (now, drained)
        return false
    }

    /// The bytes a client must take in each `sendTimeout` while bytes wait for it (at least one).
    private var minimumSent: Int {
        let nanoseconds = max(0, sendTimeout.nanoseconds)
        let (product, overflow) = Int64(max(0, minSendBytesPerSecond)).multipliedReportingOverflow(by: nanoseconds)
        return overflow ? .max : max(1, Int(product / 1_000_000_000))
    }
}
