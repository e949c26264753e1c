import Foundation
import NIOConcurrencyHelpers
import Prometheus
import ServerSupport
import Subscriptions
import StreamAuth
import StreamStore

/// The origin's counters and gauges, at `/metrics` (Prometheus text; every name starts with
/// `ds_origin_`) and `/__origin/stats` (JSON: totals, the busiest streams, and a history of the
/// last hour by the second and the last day by the minute).
public final class OriginMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    let bytesIn: Counter
    let bytesOut: Counter
    let appends: Counter
    let appendedBytes: Counter
    let openLongPolls: Gauge
    let openSSE: Gauge
    let openConnections: Gauge
    let streams: Gauge
    let connectionCounters: ConnectionCounters
    private let storage: StorageMetrics
    private let subscriptionMetrics: SubscriptionMetrics
    /// Forward-auth checks asked of the endpoint, by what came of them.
    private let forwardAuthAsked: [String: Counter]
    private let forwardAuthCached: Counter
    private let forwardAuthJoined: Counter
    private let forwardAuthBusy: Counter
    /// Requests refused by authentication, by reason.
    let authRefusals: AuthRefusalCounters
    /// Plain counts for `/__origin/stats` (Prometheus counters are write-only), the history, the
    /// busiest streams, and the request counters by (operation, status), all under one lock: a
    /// request costs one acquisition.
    private let state = NIOLockedValueBox(State())

    /// How many streams the top-streams sketch tracks, and how many `/__origin/stats` lists.
    static let trackedStreams = 200
    static let shownStreams = 20

    /// What one busy stream saw, counted since the sketch took it in.
    struct StreamTally: Sendable, Equatable {
        var appends = 0
        var appendedBytes = 0
        /// Catch-up reads, long-polls and SSE responses.
        var reads = 0
        /// Response body bytes (SSE events included).
        var responseBytes = 0
    }

    private struct RequestKey: Hashable {
        var operation: OriginOperation
        var status: UInt
    }

    private struct State {
        /// The registry would find these too, but only after building the full name and label
        /// list on every request; this keeps the hot path to one small dictionary lookup.
        var requestCounters: [RequestKey: Counter] = [:]
        var counts = OriginCounts()
        /// Waiting long-polls and SSE responses, in all and per stream.
        var liveReaders = LiveReaders()
        var streams = HeavyHitters<String, StreamTally>(capacity: OriginMetrics.trackedStreams) { StreamTally() }
        var history = SampleHistory<OriginSample>()
        var lastSampled = OriginCounts()
        var startedAt: Int64 = 0
    }

    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "origin", metricName: metric, unitName: unit, helpText: help)
        }
        bytesIn = registry.makeCounter(descriptor: name("request_bytes", "total", "Request body bytes received"))
        bytesOut = registry.makeCounter(descriptor: name("response_bytes", "total", "Response body bytes sent"))
        appends = registry.makeCounter(descriptor: name("appends", "total", "Appends that added data"))
        appendedBytes = registry.makeCounter(descriptor: name("appended_bytes", "total", "Bytes appended to streams, initial PUT bodies included"))
        openLongPolls = registry.makeGauge(descriptor: name("open_long_polls", "", "Long-polls in progress"))
        openSSE = registry.makeGauge(descriptor: name("open_sse_connections", "", "SSE responses in progress"))
        openConnections = registry.makeGauge(descriptor: name("open_connections", "", "Open client connections"))
        streams = registry.makeGauge(descriptor: name("streams", "", "Streams in the store"))
        connectionCounters = ConnectionCounters(registry: registry, subsystem: "origin")
        storage = StorageMetrics(registry: registry)
        subscriptionMetrics = SubscriptionMetrics(registry: registry)
        let checks = MetricNameDescriptor(
            namespace: "ds", subsystem: "origin", metricName: "forward_auth_checks", unitName: "total",
            helpText: "Forward-auth checks asked of the endpoint, by result (allowed, unauthorized, forbidden, failed)")
        var asked: [String: Counter] = [:]
        for result in ["allowed", "unauthorized", "forbidden", "failed"] {
            asked[result] = registry.makeCounter(descriptor: checks, labels: [("result", result)])
        }
        forwardAuthAsked = asked
        forwardAuthCached = registry.makeCounter(
            descriptor: name("forward_auth_cache_hits", "total", "Forward-auth checks answered by a remembered decision"))
        forwardAuthJoined = registry.makeCounter(
            descriptor: name("forward_auth_joined", "total", "Forward-auth checks that shared the answer of the same check in flight"))
        forwardAuthBusy = registry.makeCounter(
            descriptor: name("forward_auth_busy", "total", "Forward-auth checks refused (503) because too many were in flight"))
        authRefusals = AuthRefusalCounters(registry: registry, subsystem: "origin")
    }

    /// Counts what a forward-auth check came to.
    func forwardAuth(_ event: ForwardAuthority.Event) {
        switch event {
        case .asked(.allowed): forwardAuthAsked["allowed"]?.increment()
        case .asked(.refused(let unauthorized, _)): forwardAuthAsked[unauthorized ? "unauthorized" : "forbidden"]?.increment()
        case .asked(.failed), .asked(.busy): forwardAuthAsked["failed"]?.increment()
        case .cached: forwardAuthCached.increment()
        case .joined: forwardAuthJoined.increment()
        case .busy: forwardAuthBusy.increment()
        }
    }

    /// Counts one answered request: its operation and status, the body bytes received and sent
    /// (an SSE response's events are counted as they go, by `sent`), and what it added to the
    /// stream: `appends` (1 for an append that added data) and `appendedBytes` (an initial `PUT`
    /// body too). `stream` names the stream of a request on one.
    func request(
        _ operation: OriginOperation, status: UInt, stream: String? = nil, requestBytes: Int = 0, responseBytes: Int = 0,
        appends: Int = 0, appendedBytes: Int = 0
    ) {
        let key = RequestKey(operation: operation, status: status)
        let counter = state.withLockedValue { state -> Counter? in
            state.counts.requests[operation.ordinal] &+= 1
            state.counts.requestBytes &+= requestBytes
            state.counts.responseBytes &+= responseBytes
            state.counts.appends &+= appends
            state.counts.appendedBytes &+= appendedBytes
            if status >= 500 { state.counts.serverErrors &+= 1 } else if status >= 400 { state.counts.clientErrors &+= 1 }
            if let stream {
                state.streams.record(stream) { tally in
                    tally.appends &+= appends
                    tally.appendedBytes &+= appendedBytes
                    if operation.isRead { tally.reads &+= 1 }
                    tally.responseBytes &+= responseBytes
                }
            }
            return state.requestCounters[key]
        }
        (counter ?? makeRequestCounter(key)).increment()
        if requestBytes > 0 { bytesIn.increment(by: Int64(requestBytes)) }
        if responseBytes > 0 { bytesOut.increment(by: Int64(responseBytes)) }
        if appends > 0 { self.appends.increment(by: Int64(appends)) }
        if appendedBytes > 0 { self.appendedBytes.increment(by: Int64(appendedBytes)) }
    }

    /// The counter for a (operation, status) pair seen for the first time (rare: made once).
    private func makeRequestCounter(_ key: RequestKey) -> Counter {
        state.withLockedValue { state in
            if let counter = state.requestCounters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "ds", subsystem: "origin", metricName: "requests", unitName: "total",
                    helpText: "Requests answered, by operation and status"),
                labels: [("operation", key.operation.rawValue), ("status", String(key.status))])
            state.requestCounters[key] = counter
            return counter
        }
    }

    /// Response body bytes that belong to a request counted elsewhere: the events of an SSE
    /// response on `stream`, as they are sent.
    func sent(bytes: Int, stream: String) {
        guard bytes > 0 else { return }
        bytesOut.increment(by: Int64(bytes))
        state.withLockedValue { state in
            state.counts.responseBytes &+= bytes
            state.streams.updateIfTracked(stream) { $0.responseBytes &+= bytes }
        }
    }

    /// The kinds of reader that stay connected, waiting for data.
    /// A reader of `stream` started waiting (an SSE response, a long-poll in progress).
    func liveReaderStarted(_ stream: String, _ kind: LiveReaders.Kind) {
        (kind == .sse ? openSSE : openLongPolls).increment()
        state.withLockedValue { $0.liveReaders.started(stream, kind) }
    }

    func liveReaderEnded(_ stream: String, _ kind: LiveReaders.Kind) {
        (kind == .sse ? openSSE : openLongPolls).decrement()
        state.withLockedValue { $0.liveReaders.ended(stream, kind) }
    }

    /// Takes the interval ending at `time` (Unix seconds) into the history: called once a second
    /// by the server; cheap (a copy of the counts under the lock).
    func sample(at time: Int64, openConnections: Int, streams: Int) {
        state.withLockedValue { state in
            if state.startedAt == 0 { state.startedAt = time }
            let gauges = OriginGauges(
                openConnections: openConnections, openLongPolls: state.liveReaders.longPolls, openSSE: state.liveReaders.sse, streams: streams)
            state.history.record(OriginSample(counts: state.counts.since(state.lastSampled), gauges: gauges), at: time)
            state.lastSampled = state.counts
        }
    }

    /// When the origin started serving (Unix seconds), for `startedAt`; the first sample sets it
    /// otherwise.
    func started(at time: Int64) {
        state.withLockedValue { if $0.startedAt == 0 { $0.startedAt = time } }
    }

    /// The Prometheus text exposition of every metric.
    func render(streamCount: Int, storage statistics: StoreStatistics?, subscriptions: SubscriptionStatistics? = nil) -> [UInt8] {
        streams.set(Double(streamCount))
        if let statistics { storage.update(statistics) }
        if let subscriptions { subscriptionMetrics.update(subscriptions) }
        return registry.emitToBuffer()
    }

    // MARK: - /__origin/stats

    /// What `/__origin/stats` reports, copied under the lock in one go; the top streams' sizes
    /// are looked up in the store afterwards.
    struct Snapshot: Sendable {
        var counts: OriginCounts
        var openLongPolls: Int
        var openSSE: Int
        var top: [HeavyHitters<String, StreamTally>.Entry]
        /// Live readers of each of `top`, in order.
        var liveReaders: [Int]
        var history: HistoryRequest
        var samples: [SampleHistory<OriginSample>.Stamped]
        var startedAt: Int64
        /// Requests on streams the sketch has counted (its total weight).
        var streamRequestsCounted: Int
    }

    func snapshot(history: HistoryRequest = .none) -> Snapshot {
        state.withLockedValue { state in
            let top = state.streams.top(Self.shownStreams)
            return Snapshot(
                counts: state.counts, openLongPolls: state.liveReaders.longPolls, openSSE: state.liveReaders.sse, top: top,
                liveReaders: top.map { state.liveReaders.count(for: $0.key) }, history: history,
                samples: state.history.samples(for: history), startedAt: state.startedAt,
                streamRequestsCounted: state.streams.total)
        }
    }

    /// `/__origin/stats` without I/O: `size` gives a stream's stored bytes (nil: not found).
    func json(
        history: HistoryRequest = .none, openConnections: Int, streams: Int, now: Int64, size: (String) -> UInt64? = { _ in nil }
    ) -> [UInt8] {
        let snapshot = snapshot(history: history)
        return Self.json(snapshot, sizes: snapshot.top.map { size($0.key) }, openConnections: openConnections, streams: streams, now: now)
    }

    /// The figures as JSON: totals since the origin started, the gauges now, the busiest
    /// streams (`sizes`: each one's stored bytes, in `snapshot.top`'s order; nil for one gone),
    /// and the part of the history asked for.
    static func json(_ snapshot: Snapshot, sizes: [UInt64?], openConnections: Int, streams: Int, now: Int64) -> [UInt8] {
        let counts = snapshot.counts
        let top = snapshot.top.enumerated().map { index, entry -> [String: Any] in
            [
                "stream": entry.key, "requests": entry.count, "error": entry.error, "appends": entry.tally.appends,
                "appendedBytes": entry.tally.appendedBytes, "reads": entry.tally.reads, "responseBytes": entry.tally.responseBytes,
                "liveReaders": snapshot.liveReaders[index],
                "sizeBytes": (index < sizes.count ? sizes[index] : nil).map { $0 as Any } ?? NSNull(),
            ]
        }
        let object: [String: Any] = [
            "now": now,
            "startedAt": snapshot.startedAt,
            "requests": Dictionary(uniqueKeysWithValues: OriginOperation.allCases.map { ($0.rawValue, counts.requests($0)) }),
            "requestsTotal": counts.allRequests,
            "streamRequestsTotal": counts.streamRequests,
            "readsTotal": counts.reads,
            "requestBytes": counts.requestBytes,
            "responseBytes": counts.responseBytes,
            "appends": counts.appends,
            "appendedBytes": counts.appendedBytes,
            "clientErrors": counts.clientErrors,
            "serverErrors": counts.serverErrors,
            "openConnections": openConnections,
            "openLongPolls": snapshot.openLongPolls,
            "openSSE": snapshot.openSSE,
            "liveReaders": snapshot.openLongPolls + snapshot.openSSE,
            "streams": streams,
            "topStreams": top,
            "topStreamsTracked": trackedStreams,
            "topStreamsRequests": snapshot.streamRequestsCounted,
        ]
        var bytes = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
        if snapshot.history != .none {
            // Numbers only, written directly: thousands of rows go out when a page opens.
            bytes.removeLast()  // the closing brace
            bytes += Array(#","history":"#.utf8)
            bytes += historyJSON(snapshot.samples, step: snapshot.history.step)
            bytes.append(UInt8(ascii: "}"))
        }
        return bytes
    }

    /// The columns of a history row, in order: the interval (`time` it starts, `span` in
    /// seconds), requests by operation, then the sums and the gauges at the interval's end.
    static let historyColumns: [String] =
        ["time", "span"] + OriginOperation.allCases.map(\.rawValue) + [
            "requests", "stream_requests", "reads", "request_bytes", "response_bytes", "appends", "appended_bytes",
            "client_errors", "server_errors", "open_connections", "open_long_polls", "open_sse", "streams",
        ]

    /// `{"step":S,"columns":[…],"rows":[[…],…]}`: `requests` counts every request answered,
    /// `stream_requests` those on stream paths (not `metrics`, not `other`), `reads` catch-up
    /// reads, long-polls and SSE responses; counts are per row (divide by `span` for rates).
    static func historyJSON(_ samples: [SampleHistory<OriginSample>.Stamped], step: Int) -> [UInt8] {
        var out = "{\"step\":\(step),\"columns\":[" + historyColumns.map { "\"\($0)\"" }.joined(separator: ",") + "],\"rows\":["
        out.reserveCapacity(samples.count * 90)
        for (index, stamped) in samples.enumerated() {
            let counts = stamped.sample.counts
            let gauges = stamped.sample.gauges
            var row: [Int] = [Int(stamped.time), Int(stamped.span)]
            row += counts.requests
            row += [
                counts.allRequests, counts.streamRequests, counts.reads, counts.requestBytes, counts.responseBytes, counts.appends,
                counts.appendedBytes, counts.clientErrors, counts.serverErrors, gauges.openConnections, gauges.openLongPolls,
                gauges.openSSE, gauges.streams,
            ]
            if index > 0 { out += "," }
            out += "[" + row.map(String.init).joined(separator: ",") + "]"
        }
        out += "]}"
        return Array(out.utf8)
    }
}
