import NIOCore

/// What a load-test run does: how many streams, writers and readers, how fast, for how long.
/// Built in by name (`live`, `sse`, `catchup`, `mixed`) or read from a scenario file.
public struct Scenario: Sendable, Equatable {
    /// How the readers read.
    public enum Kind: String, Sendable, CaseIterable {
        /// Readers tail the streams with long-polls, echoing cursors.
        case live
        /// Readers tail the streams with SSE.
        case sse
        /// Readers read whole, pre-filled streams from the start, chunk by chunk, again and again.
        case catchup
        /// Long-poll readers join and leave during the run; late joiners start from `-1` or `now`.
        case mixed
    }

    /// Where a delivery's latency starts (live kinds; `catchup` times requests).
    public enum LatencyStart: String, Sendable, CaseIterable {
        /// When the writer saw the append acknowledged: how much longer a reader waits than the
        /// writer did. The default.
        case ack
        /// When the writer sent the append: the whole path, the append's own handling included.
        /// A server that answers the append before it wakes its readers delivers most messages
        /// before the writer hears back, and measured from `ack` those all count as 0.
        case send
    }

    public var name: String
    public var kind: Kind
    public var streams = 1
    public var readersPerStream = 100
    /// Writers per stream; each appends its own numbered sequence on its own connection.
    public var writersPerStream = 1
    /// Appends per second per stream, shared by its writers.
    public var appendsPerSecond: Double = 10
    /// Size of one message, its newline included.
    public var messageBytes = 100
    /// How long the writers write. Readers then get up to `drain` to receive what is left.
    public var duration: TimeAmount = .seconds(10)
    public var drain: TimeAmount = .seconds(10)
    /// New connections opened per second while readers join, so the run does not measure its
    /// own SYN storm.
    public var connectRate = 2_000
    /// Content type of the streams. `sse` defaults to a binary type so events arrive in base64.
    public var contentType = "text/plain"
    /// `catchup`: bytes written to each stream before readers start.
    public var streamBytes = 1 << 20
    /// `mixed`: how long one reader stays before leaving (a new one joins in its place).
    public var minimumLifetime: TimeAmount = .seconds(2)
    public var maximumLifetime: TimeAmount = .seconds(6)
    /// `mixed`: share of joiners that start from `now` rather than `-1`.
    public var joinFromNowShare: Double = 0.5
    /// Where delivery latency starts: the append's acknowledgement (default) or its sending.
    public var latencyFrom: LatencyStart = .ack

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
        if kind == .sse { contentType = "application/octet-stream" }
        if kind == .catchup {
            readersPerStream = 20
            appendsPerSecond = 0
        }
    }

    /// The built-in scenario called `name`, if there is one.
    public static func builtIn(_ name: String) -> Scenario? {
        Kind(rawValue: name).map { Scenario(name: name, kind: $0) }
    }

    public var totalReaders: Int { streams * readersPerStream }

    /// Checks the figures make sense together; the message says which one does not.
    public func validate() throws {
        func fail(_ message: String) -> ScenarioError { ScenarioError(message: "scenario '\(name)': \(message)") }
        guard streams >= 1 else { throw fail("streams must be at least 1") }
        guard readersPerStream >= 1 else { throw fail("readers_per_stream must be at least 1") }
        guard writersPerStream >= 1 else { throw fail("writers_per_stream must be at least 1") }
        guard appendsPerSecond >= 0, appendsPerSecond.isFinite else { throw fail("appends_per_second must not be negative") }
        guard kind == .catchup || appendsPerSecond >= 0.01 else { throw fail("appends_per_second must be at least 0.01") }
        guard messageBytes >= LoadMessage.minimumBytes, messageBytes <= 1 << 20 else {
            throw fail("message_bytes must be between \(LoadMessage.minimumBytes) and 1048576")
        }
        guard duration > .zero else { throw fail("duration must be positive") }
        guard drain >= .zero else { throw fail("drain must not be negative") }
        guard connectRate >= 1 else { throw fail("connect_rate must be at least 1") }
        guard streamBytes >= messageBytes else { throw fail("stream_bytes must hold at least one message") }
        guard minimumLifetime > .zero, maximumLifetime >= minimumLifetime else {
            throw fail("reader lifetimes must be positive, minimum ≤ maximum")
        }
        guard (0...1).contains(joinFromNowShare) else { throw fail("join_from_now_share must be between 0 and 1") }
    }

    public var summary: ScenarioSummary {
        ScenarioSummary(
            name: name, kind: kind.rawValue, streams: streams, readersPerStream: readersPerStream,
            writersPerStream: writersPerStream, appendsPerSecond: appendsPerSecond, messageBytes: messageBytes,
            durationSeconds: duration.seconds)
    }
}

/// A scenario that cannot run, phrased for the operator.
public struct ScenarioError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension TimeAmount {
    var seconds: Double { Double(nanoseconds) / 1e9 }
}
