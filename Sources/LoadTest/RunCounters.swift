import NIOConcurrencyHelpers

/// What readers and writers count while a run goes. The sampler takes the interval part once a
/// second (for the timeline and the progress line) and folds it into the totals.
public struct Tally: Sendable {
    public var messages = 0
    public var bytes = 0
    public var appends = 0
    public var failedAppends = 0
    public var beforeAck = 0
    public var connectionErrors = 0
    public var requests: [String: Int] = [:]
    public var statuses: [Int: Int] = [:]
    public var latency = LatencyHistogram()

    public init() {}

    public var errors: Int { connectionErrors + failedAppends + statuses.values.reduce(0, +) }

    public mutating func add(_ other: Tally) {
        messages += other.messages
        bytes += other.bytes
        appends += other.appends
        failedAppends += other.failedAppends
        beforeAck += other.beforeAck
        connectionErrors += other.connectionErrors
        requests.merge(other.requests, uniquingKeysWith: +)
        statuses.merge(other.statuses, uniquingKeysWith: +)
        latency.add(other.latency)
    }
}

/// The request classes readers count, named as the servers' metrics name them.
public enum RequestClass: String, Sendable {
    case catchUp = "catch_up"
    case longPoll = "long_poll"
    case sse
}

/// Counters shared by the clients on one event loop. Each loop has its own, so the two
/// threads of a 2-core machine rarely meet on a lock.
final class RunCounters: Sendable {
    private let state = NIOLockedValueBox(Tally())
    private let connections = NIOLockedValueBox(0)

    func update(_ body: (inout Tally) -> Void) {
        state.withLockedValue { body(&$0) }
    }

    func request(_ kind: RequestClass) {
        state.withLockedValue { $0.requests[kind.rawValue, default: 0] += 1 }
    }

    func status(_ code: Int) {
        state.withLockedValue { $0.statuses[code, default: 0] += 1 }
    }

    func connectionError() {
        state.withLockedValue { $0.connectionErrors += 1 }
    }

    func connectionOpened() { connections.withLockedValue { $0 += 1 } }
    func connectionClosed() { connections.withLockedValue { $0 -= 1 } }
    var openConnections: Int { connections.withLockedValue { $0 } }

    /// Returns what was counted since the last call and starts a new interval.
    func takeInterval() -> Tally {
        state.withLockedValue { tally in
            defer { tally = Tally() }
            return tally
        }
    }
}

/// When each writer's appends were acknowledged (and, when latency is timed from the send, first
/// sent), so a reader can time a message from there to its own receipt.
final class AckTable: Sendable {
    /// Per stream, per writer: acknowledgement times (uptime nanoseconds) by sequence number.
    private let streams: [NIOLockedValueBox<[[UInt64]]>]
    /// The same for the first time each append was sent; only kept when latency starts there.
    private let sends: [NIOLockedValueBox<[[UInt64]]>]?

    init(streams: Int, writers: Int, latencyFrom: Scenario.LatencyStart = .ack) {
        self.streams = (0..<streams).map { _ in NIOLockedValueBox(Array(repeating: [], count: writers)) }
        self.sends = latencyFrom == .send ? (0..<streams).map { _ in NIOLockedValueBox(Array(repeating: [], count: writers)) } : nil
    }

    /// An append is on its way. A retry of the same number keeps the first attempt's time.
    func sent(stream: Int, writer: Int, seq: Int, at time: UInt64) {
        sends?[stream].withLockedValue { writers in
            if writers[writer].count == seq { writers[writer].append(time) }
        }
    }

    func acknowledged(stream: Int, writer: Int, seq: Int, at time: UInt64) {
        streams[stream].withLockedValue { writers in
            // Sequence numbers are acknowledged in order: a writer has one append in flight.
            if writers[writer].count == seq { writers[writer].append(time) }
        }
    }

    /// Where the latency of each of `messages` (of one stream) starts: its acknowledgement, or
    /// its first send when the scenario says `latency_from = "send"`; nil where that has not
    /// happened (yet).
    func latencyStarts(stream: Int, _ messages: [LoadMessage]) -> [UInt64?] {
        (sends ?? streams)[stream].withLockedValue { writers in
            messages.map { message in
                let times = writers[message.writer]
                return message.seq < times.count ? times[message.seq] : nil
            }
        }
    }

    /// How many appends of each writer of `stream` have been acknowledged.
    func acknowledgedCounts(stream: Int) -> [Int] {
        streams[stream].withLockedValue { $0.map(\.count) }
    }

    var totalAcknowledged: Int {
        streams.reduce(0) { sum, box in sum + box.withLockedValue { $0.reduce(0) { $0 + $1.count } } }
    }
}
