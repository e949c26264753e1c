/// Everything one load-test run measured. It is what `--json` writes, what the text table and the
/// HTML report are rendered from, and what `--compare` sets side by side. Times are in
/// milliseconds or seconds as the field name says; counts are exact.
public struct LoadTestResult: Codable, Sendable, Equatable {
    /// The scenario as it ran.
    public var scenario: ScenarioSummary
    /// Where the readers went (an edge or the origin).
    public var target: String
    /// Where the writers went, and whose `/metrics` gave the origin figures.
    public var origin: String
    /// When the measured phase started, RFC 3339 UTC.
    public var startedAt: String
    /// Length of the measured phase (writers running plus the drain), seconds.
    public var elapsedSeconds: Double

    /// What the latency histogram holds: `delivery` (append acknowledged → reader receipt) for
    /// live scenarios, `delivery-from-send` (append sent → reader receipt) for live scenarios
    /// with `latency_from = "send"`, `request` (request sent → response complete) for catch-up.
    public var latencyKind: String
    public var latency: LatencySummary
    public var delivery: DeliverySummary
    public var throughput: ThroughputSummary
    /// Requests the readers sent, by class: `catch_up`, `long_poll`, `sse`.
    public var readerRequests: [String: Int]
    /// Requests the origin answered during the run, by operation (`read`, `long_poll`, `sse`,
    /// `append`, ...), from its `/metrics` before and after. Nil when it could not be scraped.
    public var originRequests: [String: Int]?
    /// Reader read requests per origin read request (≥ 1; 1 means no collapsing). Nil without
    /// origin metrics or when the origin saw no reads.
    public var collapseRatio: Double?
    /// One entry per edge whose `/metrics` was scraped (the target first).
    public var edges: [EdgeSummary]
    public var errors: ErrorSummary
    /// One point per second of the measured phase.
    public var timeline: [TimelinePoint]

    public init(
        scenario: ScenarioSummary, target: String, origin: String, startedAt: String, elapsedSeconds: Double,
        latencyKind: String, latency: LatencySummary, delivery: DeliverySummary, throughput: ThroughputSummary,
        readerRequests: [String: Int], originRequests: [String: Int]?, collapseRatio: Double?,
        edges: [EdgeSummary], errors: ErrorSummary, timeline: [TimelinePoint]
    ) {
        self.scenario = scenario
        self.target = target
        self.origin = origin
        self.startedAt = startedAt
        self.elapsedSeconds = elapsedSeconds
        self.latencyKind = latencyKind
        self.latency = latency
        self.delivery = delivery
        self.throughput = throughput
        self.readerRequests = readerRequests
        self.originRequests = originRequests
        self.collapseRatio = collapseRatio
        self.edges = edges
        self.errors = errors
        self.timeline = timeline
    }

    /// True when no reader lost, duplicated or reordered a message and nothing was corrupt.
    public var deliveryIsClean: Bool {
        delivery.lost == 0 && delivery.duplicated == 0 && delivery.outOfOrder == 0 && delivery.corrupt == 0
    }
}

/// The scenario's shape, as reported.
public struct ScenarioSummary: Codable, Sendable, Equatable {
    public var name: String
    /// `live`, `sse`, `catchup` or `mixed`.
    public var kind: String
    public var streams: Int
    public var readersPerStream: Int
    public var writersPerStream: Int
    /// Appends per second per stream.
    public var appendsPerSecond: Double
    public var messageBytes: Int
    public var durationSeconds: Double

    public init(
        name: String, kind: String, streams: Int, readersPerStream: Int, writersPerStream: Int,
        appendsPerSecond: Double, messageBytes: Int, durationSeconds: Double
    ) {
        self.name = name
        self.kind = kind
        self.streams = streams
        self.readersPerStream = readersPerStream
        self.writersPerStream = writersPerStream
        self.appendsPerSecond = appendsPerSecond
        self.messageBytes = messageBytes
        self.durationSeconds = durationSeconds
    }
}

/// Percentiles of the HDR histogram, in milliseconds, plus its CDF for charts.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double
    /// (percentile 0...100, milliseconds) points, ascending; enough for a smooth CDF.
    public var cdf: [CDFPoint]

    public init(count: Int, p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double, cdf: [CDFPoint]) {
        self.count = count
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
        self.cdf = cdf
    }

    public static let empty = LatencySummary(count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0, cdf: [])
}

public struct CDFPoint: Codable, Sendable, Equatable {
    public var percentile: Double
    public var millis: Double

    public init(percentile: Double, millis: Double) {
        self.percentile = percentile
        self.millis = millis
    }
}

/// What the readers actually received, checked message by message.
public struct DeliverySummary: Codable, Sendable, Equatable {
    /// Reader sessions (a reader that leaves and a new one that joins count as two).
    public var readers: Int
    /// Appends the writers saw acknowledged.
    public var appended: Int
    /// Messages the readers should have received, summed over readers.
    public var expected: Int
    /// Messages received (duplicates included).
    public var received: Int
    public var lost: Int
    public var duplicated: Int
    public var outOfOrder: Int
    /// Lines that did not parse as our messages, or named a stream other than the reader's.
    public var corrupt: Int
    /// Readers with at least one lost, duplicated, out-of-order or corrupt message.
    public var readersWithProblems: Int
    /// Messages that reached a reader before their writer saw the append acknowledged (their
    /// latency is recorded as 0).
    public var beforeAck: Int

    public init(
        readers: Int = 0, appended: Int = 0, expected: Int = 0, received: Int = 0, lost: Int = 0,
        duplicated: Int = 0, outOfOrder: Int = 0, corrupt: Int = 0, readersWithProblems: Int = 0, beforeAck: Int = 0
    ) {
        self.readers = readers
        self.appended = appended
        self.expected = expected
        self.received = received
        self.lost = lost
        self.duplicated = duplicated
        self.outOfOrder = outOfOrder
        self.corrupt = corrupt
        self.readersWithProblems = readersWithProblems
        self.beforeAck = beforeAck
    }
}

public struct ThroughputSummary: Codable, Sendable, Equatable {
    /// Messages received by readers per second of the measured phase.
    public var messagesPerSecond: Double
    /// Body bytes received by readers per second.
    public var bytesPerSecond: Double
    /// Appends acknowledged per second.
    public var appendsPerSecond: Double

    public init(messagesPerSecond: Double, bytesPerSecond: Double, appendsPerSecond: Double) {
        self.messagesPerSecond = messagesPerSecond
        self.bytesPerSecond = bytesPerSecond
        self.appendsPerSecond = appendsPerSecond
    }
}

/// One edge's view of the run, from its `/metrics` before and after.
public struct EdgeSummary: Codable, Sendable, Equatable {
    public var url: String
    /// Client requests by `X-Cache` outcome (HIT, MISS, STALE, REVALIDATED, COLLAPSED, PASS).
    public var outcomes: [String: Int]
    /// Requests this edge sent upstream, by class.
    public var upstreamRequests: [String: Int]
    /// Reads answered without an upstream request of their own (HIT, STALE, COLLAPSED) over all
    /// reads (everything but PASS).
    public var hitRate: Double?

    public init(url: String, outcomes: [String: Int], upstreamRequests: [String: Int], hitRate: Double?) {
        self.url = url
        self.outcomes = outcomes
        self.upstreamRequests = upstreamRequests
        self.hitRate = hitRate
    }
}

public struct ErrorSummary: Codable, Sendable, Equatable {
    /// Connections that could not be opened, or closed under a reader or writer unexpectedly.
    public var connectionErrors: Int
    /// Responses with an unexpected status, by status code.
    public var statuses: [String: Int]
    /// Writer appends that failed.
    public var failedAppends: Int

    public init(connectionErrors: Int = 0, statuses: [String: Int] = [:], failedAppends: Int = 0) {
        self.connectionErrors = connectionErrors
        self.statuses = statuses
        self.failedAppends = failedAppends
    }

    public var total: Int { connectionErrors + statuses.values.reduce(0, +) + failedAppends }
}

/// One second of the run.
public struct TimelinePoint: Codable, Sendable, Equatable {
    /// Seconds since the measured phase started (end of this interval).
    public var second: Double
    public var messagesPerSecond: Double
    public var bytesPerSecond: Double
    public var readerRequestsPerSecond: Double
    /// Requests the origin answered per second (all operations); nil when not scraped.
    public var originRequestsPerSecond: Double?
    /// Open reader connections at the end of the interval.
    public var connections: Int
    /// p99 latency of this interval alone, milliseconds.
    public var p99Millis: Double
    public var errors: Int

    public init(
        second: Double, messagesPerSecond: Double, bytesPerSecond: Double, readerRequestsPerSecond: Double,
        originRequestsPerSecond: Double?, connections: Int, p99Millis: Double, errors: Int
    ) {
        self.second = second
        self.messagesPerSecond = messagesPerSecond
        self.bytesPerSecond = bytesPerSecond
        self.readerRequestsPerSecond = readerRequestsPerSecond
        self.originRequestsPerSecond = originRequestsPerSecond
        self.connections = connections
        self.p99Millis = p99Millis
        self.errors = errors
    }
}
