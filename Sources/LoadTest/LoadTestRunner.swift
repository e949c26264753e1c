import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How to run one scenario against one target.
public struct LoadTestOptions: Sendable {
    public var scenario: Scenario
    /// Where readers go: the origin or an edge.
    public var target: Target
    /// Where writers go and whose metrics give the origin figures.
    public var origin: Target
    /// Edges whose `/metrics` are scraped; by default the target, when it is not the origin.
    public var edgeMetrics: [Target]?
    /// Targets that are not loopback addresses are refused unless this is set.
    public var allowRemote = false

    public init(scenario: Scenario, target: Target, origin: Target? = nil) {
        self.scenario = scenario
        self.target = target
        self.origin = origin ?? target
    }

    var edgesToScrape: [Target] { edgeMetrics ?? (target == origin ? [] : [target]) }
}

/// A moment of a run, for the progress line.
public struct LoadTestProgress: Sendable {
    public var phase: String
    public var elapsedSeconds: Double
    public var connections: Int
    public var messagesPerSecond: Double
    public var p99Millis: Double
    public var errors: Int
}

/// Runs one scenario: creates fresh streams, connects the readers at a paced rate, starts the
/// writers, samples once a second, lets the readers drain, then audits every reader and diffs
/// the servers' metrics.
public final class LoadTestRunner: Sendable {
    private let options: LoadTestOptions
    private let group: EventLoopGroup

    public init(options: LoadTestOptions, group: EventLoopGroup) {
        self.options = options
        self.group = group
    }

    public func run(progress: @escaping @Sendable (LoadTestProgress) -> Void = { _ in }) async throws -> LoadTestResult {
        let scenario = options.scenario
        try scenario.validate()
        for target in [options.target, options.origin] + options.edgesToScrape where !target.isLoopback && !options.allowRemote {
            throw ScenarioError(message: "\(target) is not a loopback address; pass --allow-remote to load a remote server")
        }
        let loops = Array(group.makeIterator())
        let shards = loops.map { _ in RunCounters() }
        let acks = AckTable(streams: scenario.streams, writers: scenario.writersPerStream, latencyFrom: scenario.latencyFrom)
        let control = loops[0]
        let runID = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let paths = (0..<scenario.streams).map { "/v1/stream/loadtest-\(runID)-\($0)" }

        try await createStreams(paths, on: control)
        let prefilled = scenario.kind == .catchup ? try await prefill(paths, acks: acks, on: control) : []
        let originBefore = await scrape(options.origin, on: control)
        let edgesBefore = await scrapeAll(options.edgesToScrape, on: control)

        // Readers join at the paced rate; the measured phase starts once all are in place.
        let roster = ReaderRoster()
        let factory = ReaderFactory(
            scenario: scenario, target: options.target, paths: paths, loops: loops, shards: shards, acks: acks,
            prefilled: prefilled)
        let setupStart = NIODeadline.now()
        let perTick = max(1, scenario.connectRate / 100)
        for index in 0..<scenario.totalReaders {
            let reader = factory.make(stream: index % scenario.streams, fromNow: false)
            roster.add(reader)
            reader.loop.execute { reader.start() }
            if index % perTick == perTick - 1 {
                try await Task.sleep(nanoseconds: 10_000_000)
                if index % (perTick * 50) == perTick * 50 - 1 {
                    progress(connecting(since: setupStart, shards: shards))
                }
            }
        }
        let setupLimit = NIODeadline.now() + .seconds(30) + .seconds(Int64(scenario.totalReaders / scenario.connectRate) * 2)
        while roster.readyCount < scenario.totalReaders, NIODeadline.now() < setupLimit {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        // Setup traffic (the readers' first requests) counts in the request totals, which the
        // origin's counters also include, but not in throughput or the timeline.
        var total = Tally()
        for shard in shards {
            let setup = shard.takeInterval()
            total.requests.merge(setup.requests, uniquingKeysWith: +)
            total.statuses.merge(setup.statuses, uniquingKeysWith: +)
            total.connectionErrors += setup.connectionErrors
        }

        // The measured phase. Writers get a thread of their own, so acknowledgements are timed
        // when they arrive, not when busy reader loops get round to them.
        let writerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let writerCounters = RunCounters()
        let sampled = shards + [writerCounters]
        let measureStart = NIODeadline.now()
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let writersDone = NIOLockedValueBox(false)
        if scenario.kind == .catchup {
            control.scheduleTask(deadline: measureStart + scenario.duration) { writersDone.withLockedValue { $0 = true } }
        } else {
            let writers = startWriters(paths: paths, loop: writerGroup.next(), counters: writerCounters, acks: acks, runID: runID, start: measureStart)
            EventLoopFuture.andAllComplete(writers.map(\.done.futureResult), on: control).whenComplete { _ in
                writersDone.withLockedValue { $0 = true }
            }
        }
        if scenario.kind == .mixed {
            for reader in roster.all { scheduleDeparture(of: reader, roster: roster, factory: factory, writersDone: writersDone) }
        }

        var timeline: [TimelinePoint] = []
        var previousOrigin = originBefore
        var drainDeadline: NIODeadline?
        var lastSample = measureStart
        // Writers stop themselves on time; this bounds the run even if something else hangs.
        let hardStop = measureStart + scenario.duration + scenario.drain + .seconds(30)
        while true {
            try await Task.sleep(nanoseconds: 100_000_000)
            if drainDeadline == nil, writersDone.withLockedValue({ $0 }) {
                drainDeadline = NIODeadline.now() + (scenario.kind == .catchup ? .zero : scenario.drain)
                let counts = (0..<scenario.streams).map { acks.acknowledgedCounts(stream: $0) }
                for reader in roster.all {
                    reader.loop.execute { reader.writersFinished(counts[reader.context.stream]) }
                }
            }
            let finished = drainDeadline.map { roster.allFinished || NIODeadline.now() >= $0 } ?? false
            let seconds = Double((NIODeadline.now() - lastSample).nanoseconds) / 1e9
            guard seconds >= 1 || finished || NIODeadline.now() >= hardStop else { continue }

            lastSample = NIODeadline.now()
            var interval = Tally()
            for shard in sampled { interval.add(shard.takeInterval()) }
            total.add(interval)
            let originNow = await scrape(options.origin, on: control)
            var originRate: Double?
            if let originNow, let previousOrigin {
                originRate = Double(originNow.delta(since: previousOrigin).originRequestsByOperation().values.reduce(0, +)) / seconds
            }
            previousOrigin = originNow ?? previousOrigin
            let elapsed = Double((lastSample - measureStart).nanoseconds) / 1e9
            let connections = shards.reduce(0) { $0 + $1.openConnections }
            timeline.append(TimelinePoint(
                second: elapsed, messagesPerSecond: Double(interval.messages) / seconds, bytesPerSecond: Double(interval.bytes) / seconds,
                readerRequestsPerSecond: Double(interval.requests.values.reduce(0, +)) / seconds, originRequestsPerSecond: originRate,
                connections: connections, p99Millis: interval.latency.millis(atPercentile: 99), errors: interval.errors))
            progress(LoadTestProgress(
                phase: drainDeadline == nil ? "running" : "draining", elapsedSeconds: elapsed, connections: connections,
                messagesPerSecond: Double(interval.messages) / seconds, p99Millis: interval.latency.millis(atPercentile: 99),
                errors: total.errors))
            if finished || NIODeadline.now() >= hardStop { break }
        }
        let elapsed = Double((NIODeadline.now() - measureStart).nanoseconds) / 1e9

        // Whoever is still reading has had its chance.
        for reader in roster.all { reader.loop.execute { reader.finish() } }
        let outcomes = try await EventLoopFuture.whenAllSucceed(roster.all.map(\.outcome.futureResult), on: control).get()
        for shard in sampled { total.add(shard.takeInterval()) }
        try await writerGroup.shutdownGracefully()

        let originAfter = await scrape(options.origin, on: control)
        let edgesAfter = await scrapeAll(options.edgesToScrape, on: control)
        let originDelta = originAfter.flatMap { after in originBefore.map { after.delta(since: $0) } }
        let edges = zip(options.edgesToScrape, zip(edgesBefore, edgesAfter)).compactMap { target, pair -> EdgeSummary? in
            guard let before = pair.0, let after = pair.1 else { return nil }
            return after.delta(since: before).edgeSummary(url: target.description)
        }
        let audit = outcomes.reduce(DeliveryAudit()) { $0 + $1.audit }
        let readerReads = total.requests.values.reduce(0, +)
        let appended = scenario.kind == .catchup ? prefilled.reduce(0, +) : acks.totalAcknowledged
        let writePhase = min(elapsed, scenario.duration.seconds)

        return LoadTestResult(
            scenario: scenario.summary, target: options.target.description, origin: options.origin.description,
            startedAt: startedAt, elapsedSeconds: elapsed,
            latencyKind: scenario.kind == .catchup ? "request" : scenario.latencyFrom == .send ? "delivery-from-send" : "delivery",
            latency: total.latency.summary,
            delivery: DeliverySummary(
                readers: outcomes.count, appended: appended, expected: audit.expected, received: audit.received,
                lost: audit.lost, duplicated: audit.duplicated, outOfOrder: audit.outOfOrder, corrupt: audit.corrupt,
                readersWithProblems: outcomes.filter(\.audit.hasProblems).count, beforeAck: total.beforeAck),
            throughput: ThroughputSummary(
                messagesPerSecond: Double(total.messages) / max(elapsed, 0.001), bytesPerSecond: Double(total.bytes) / max(elapsed, 0.001),
                appendsPerSecond: Double(total.appends) / max(writePhase, 0.001)),
            readerRequests: total.requests, originRequests: originDelta?.originRequestsByOperation().filter { $0.value > 0 },
            collapseRatio: originDelta.flatMap { MetricsSnapshot.collapseRatio(readerReads: readerReads, originReads: $0.originReadRequests()) },
            edges: edges,
            errors: ErrorSummary(
                connectionErrors: total.connectionErrors,
                statuses: Dictionary(uniqueKeysWithValues: total.statuses.map { (String($0.key), $0.value) }),
                failedAppends: total.failedAppends),
            timeline: timeline)
    }
}

extension LoadTestRunner {
    /// Creates the run's streams on the origin.
    private func createStreams(_ paths: [String], on loop: EventLoop) async throws {
        for path in paths {
            let response = try await SimpleRequest.send(
                .PUT, path, to: options.origin, on: loop, headers: [("Content-Type", options.scenario.contentType)])
            guard response.status == 201 || response.status == 200 else {
                throw ScenarioError(message: "creating \(path) on \(options.origin) answered \(response.status): \(String(buffer: response.body))")
            }
        }
    }

    /// Writes `stream_bytes` of messages (writer 0) into every stream, in large appends, and
    /// returns how many messages each holds.
    private func prefill(_ paths: [String], acks: AckTable, on loop: EventLoop) async throws -> [Int] {
        let scenario = options.scenario
        let perStream = scenario.streamBytes / scenario.messageBytes
        let perAppend = max(1, (256 << 10) / scenario.messageBytes)
        for (stream, path) in paths.enumerated() {
            var seq = 0
            while seq < perStream {
                var body = ByteBuffer()
                let end = min(perStream, seq + perAppend)
                for next in seq..<end { body.writeBytes(LoadMessage(stream: stream, writer: 0, seq: next).encoded(size: scenario.messageBytes)) }
                let response = try await SimpleRequest.send(
                    .POST, path, to: options.origin, on: loop, headers: [("Content-Type", scenario.contentType)], body: body)
                guard (200..<300).contains(response.status) else {
                    throw ScenarioError(message: "pre-filling \(path) answered \(response.status): \(String(buffer: response.body))")
                }
                for acknowledged in seq..<end { acks.acknowledged(stream: stream, writer: 0, seq: acknowledged, at: now()) }
                seq = end
            }
        }
        return Array(repeating: perStream, count: paths.count)
    }

    private func startWriters(paths: [String], loop: EventLoop, counters: RunCounters, acks: AckTable, runID: String, start: NIODeadline) -> [StreamWriter] {
        let scenario = options.scenario
        let writers = scenario.writersPerStream
        // Each writer carries rate / writers appends per second, staggered so they interleave.
        let interval = TimeAmount.nanoseconds(Int64(1e9 * Double(writers) / scenario.appendsPerSecond))
        var all: [StreamWriter] = []
        for stream in paths.indices {
            for writer in 0..<writers {
                let plan = StreamWriter.Plan(
                    origin: options.origin, path: paths[stream], stream: stream, writer: writer,
                    producerID: "loadtest-\(runID)-\(stream)-\(writer)", contentType: scenario.contentType,
                    messageBytes: scenario.messageBytes, interval: interval,
                    firstAppend: start + .nanoseconds(interval.nanoseconds * Int64(writer) / Int64(writers)),
                    stopAt: start + scenario.duration)
                let streamWriter = StreamWriter(plan: plan, loop: loop, acks: acks, counters: counters)
                loop.execute { streamWriter.start() }
                all.append(streamWriter)
            }
        }
        return all
    }

    /// `mixed`: the reader leaves after a random lifetime; while the writers run, a new reader
    /// takes its place, from `now` or from `-1`.
    private func scheduleDeparture(of reader: ReaderSession, roster: ReaderRoster, factory: ReaderFactory, writersDone: NIOLockedValueBox<Bool>) {
        let scenario = options.scenario
        let lifetime = TimeAmount.nanoseconds(.random(in: scenario.minimumLifetime.nanoseconds...scenario.maximumLifetime.nanoseconds))
        reader.loop.scheduleTask(in: lifetime) {
            // Once the writers stopped, readers stay to collect what they are owed.
            if reader.finalCounts == nil { reader.finish(left: true) }
        }
        reader.outcome.futureResult.whenSuccess { outcome in
            guard outcome.left, !writersDone.withLockedValue({ $0 }) else { return }
            let next = factory.make(stream: reader.context.stream, fromNow: Double.random(in: 0..<1) < scenario.joinFromNowShare)
            roster.add(next)
            next.loop.execute { next.start() }
            self.scheduleDeparture(of: next, roster: roster, factory: factory, writersDone: writersDone)
        }
    }

    private func scrape(_ target: Target, on loop: EventLoop) async -> MetricsSnapshot? {
        guard let response = try? await SimpleRequest.send(.GET, "/metrics", to: target, on: loop), response.status == 200 else {
            return nil
        }
        return MetricsSnapshot(parsing: String(buffer: response.body))
    }

    private func scrapeAll(_ targets: [Target], on loop: EventLoop) async -> [MetricsSnapshot?] {
        var snapshots: [MetricsSnapshot?] = []
        for target in targets { snapshots.append(await scrape(target, on: loop)) }
        return snapshots
    }

    /// The progress line while readers connect: nothing is measured yet.
    private func connecting(since start: NIODeadline, shards: [RunCounters]) -> LoadTestProgress {
        LoadTestProgress(
            phase: "connecting", elapsedSeconds: Double((NIODeadline.now() - start).nanoseconds) / 1e9,
            connections: shards.reduce(0) { $0 + $1.openConnections }, messagesPerSecond: 0, p99Millis: 0, errors: 0)
    }
}
