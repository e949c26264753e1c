import NIOConcurrencyHelpers
import NIOCore

/// Every reader of a run, and how many are in place or done. Readers join from the run's task
/// and (in `mixed`) from event loops, hence the lock.
final class ReaderRoster: Sendable {
    private struct State {
        var readers: [ReaderSession] = []
        var ready = 0
        var finished = 0
    }

    private let state = NIOLockedValueBox(State())

    func add(_ reader: ReaderSession) {
        state.withLockedValue { $0.readers.append(reader) }
        reader.ready.futureResult.whenSuccess { self.state.withLockedValue { $0.ready += 1 } }
        reader.outcome.futureResult.whenSuccess { _ in self.state.withLockedValue { $0.finished += 1 } }
    }

    var all: [ReaderSession] { state.withLockedValue { $0.readers } }
    var readyCount: Int { state.withLockedValue { $0.ready } }
    var allFinished: Bool { state.withLockedValue { $0.finished == $0.readers.count } }
}

/// Makes the scenario's kind of reader, spreading readers over the event loops.
final class ReaderFactory: Sendable {
    private let scenario: Scenario
    private let target: Target
    private let paths: [String]
    private let loops: [EventLoop]
    private let shards: [RunCounters]
    private let acks: AckTable
    private let prefilled: [Int]
    private let sequence = NIOLockedValueBox(0)

    init(scenario: Scenario, target: Target, paths: [String], loops: [EventLoop], shards: [RunCounters], acks: AckTable, prefilled: [Int]) {
        self.scenario = scenario
        self.target = target
        self.paths = paths
        self.loops = loops
        self.shards = shards
        self.acks = acks
        self.prefilled = prefilled
    }

    func make(stream: Int, fromNow: Bool) -> ReaderSession {
        let index = sequence.withLockedValue { value in
            defer { value += 1 }
            return value
        }
        let loop = loops[index % loops.count]
        let context = ReaderContext(
            target: target, path: paths[stream], stream: stream, writers: scenario.writersPerStream,
            counters: shards[index % shards.count], acks: acks)
        switch scenario.kind {
        case .live, .mixed: return LongPollReader(context: context, loop: loop, fromNow: fromNow)
        case .sse: return SSETailReader(context: context, loop: loop)
        case .catchup: return CatchUpReader(context: context, loop: loop, streamCounts: [prefilled[stream]])
        }
    }
}
