/// Generates `Stream-Cursor` values (§10.1): time is cut into fixed intervals counted from an
/// epoch, and the cursor is the current interval number. A client that echoes a cursor at or
/// beyond the current interval gets a strictly larger one, advanced by random jitter, so a CDN
/// never serves the same cached empty answer forever and cursors never go backwards.
public struct CursorPolicy: Sendable, Hashable {
    /// 2024-10-09T00:00:00Z in seconds since 1970, the protocol's default epoch.
    public static let defaultEpoch: Double = 1_728_432_000
    /// The jitter range, in seconds, added when a client's cursor is not behind the clock.
    public static let jitterSeconds: ClosedRange<Int> = 1...3600

    public var epoch: Double
    public var intervalSeconds: Double

    public init(epoch: Double = CursorPolicy.defaultEpoch, intervalSeconds: Double = 20) {
        precondition(intervalSeconds > 0, "cursor interval must be positive")
        self.epoch = epoch
        self.intervalSeconds = intervalSeconds
    }

    /// The interval number at `now` (seconds since 1970).
    public func interval(at now: Double) -> UInt64 {
        let elapsed = now - epoch
        return elapsed <= 0 ? 0 : UInt64(elapsed / intervalSeconds)
    }

    /// The cursor to answer a live request with.
    /// - Parameters:
    ///   - clientCursor: the request's `cursor` parameter, if any (ignored unless a decimal number).
    ///   - now: seconds since 1970.
    ///   - jitter: draws a number of seconds from `jitterSeconds`; injectable for tests.
    public func nextCursor(
        after clientCursor: Substring?, now: Double,
        jitter: () -> Int = { Int.random(in: CursorPolicy.jitterSeconds) }
    ) -> UInt64 {
        let current = interval(at: now)
        guard let text = clientCursor, let client = UInt64(text), client >= current else {
            return current
        }
        let seconds = Double(min(max(jitter(), jitterSeconds.lowerBound), jitterSeconds.upperBound))
        let steps = max(1, UInt64((seconds / intervalSeconds).rounded(.up)))
        let (advanced, overflow) = client.addingReportingOverflow(steps)
        return overflow ? client : advanced
    }

    /// The cursor for a client whose long-poll was answered by a request made with another
    /// cursor (an edge collapsing long-polls at one offset): the upstream's cursor, or one past
    /// the client's own if that is not already beyond it. The client's cursor never goes back,
    /// and one at or past the current interval gets a strictly greater one (the upstream's is at
    /// least the current interval), as §10.1 requires of every answer.
    public static func sharedAnswerCursor(upstream: Substring, client: Substring?) -> Substring {
        guard let upstreamValue = UInt64(upstream), let client, let clientValue = UInt64(client),
            clientValue >= upstreamValue
        else { return upstream }
        // At the very top there is no greater cursor; staying put is the nearest to forward.
        return clientValue == .max ? client : Substring(String(clientValue + 1))
    }

    private var jitterSeconds: ClosedRange<Int> { Self.jitterSeconds }
}
