import DurableStreams
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A `StreamStore` that keeps everything in memory: fast, and gone when the process exits.
///
/// One lock guards all streams. Every critical section is short and does no I/O (a copy of an
/// append's bytes at most), so calling it from an event loop is fine. Promises are completed
/// only after the lock is released, because completing one runs its callbacks inline.
public final class MemoryStore: StreamStore {
    /// Seconds since 1970; injectable so expiry can be tested without waiting.
    public typealias Clock = @Sendable () -> Double

    private let state = NIOLockedValueBox(State())
    private let clock: Clock
    /// Distinguishes stream ids of this process from those of an earlier run.
    private let incarnation = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    public init(clock: @escaping Clock = { Date().timeIntervalSince1970 }) {
        self.clock = clock
    }

    private struct Stream {
        var id: String
        var contentType: ContentType
        var lifetime: StreamLifetime
        var log: MemoryLog
        var closed = false
        var lastAccess: Double
        var lastSeq: String?
        var producers: [StreamKey: ProducerState] = [:]
        /// The producer request that closed the stream, so its retry is recognised.
        var closedBy: ProducerClaim?
        var waiters = StreamWaiters()
        /// Where its own bytes start: its fork point (0 unless it is a fork).
        var base: UInt64 = 0
        /// How it was forked, and from which stream (whose name cannot be reused while this
        /// fork holds a reference to it).
        var fork: ForkOrigin?
        var sourceKey: StreamKey?
        /// Forks that read this stream's bytes; while any do, deleting it only soft-deletes it.
        var forkCount = 0
        /// Deleted (or expired) while forks still use its data: 410 for every direct operation.
        var softDeleted = false

        var tail: StreamOffset { StreamOffset(position: log.length) }

        func info() -> StreamInfo {
            StreamInfo(id: id, contentType: contentType, lifetime: lifetime, tail: tail, closed: closed,
                       expiresAt: lifetime.expiry(lastAccess: lastAccess))
        }

        func isExpired(at now: Double) -> Bool {
            guard let expiry = lifetime.expiry(lastAccess: lastAccess) else { return false }
            return now >= expiry
        }

        mutating func touch(_ now: Double) {
            if lifetime.isSliding { lastAccess = now }
        }

        /// Up to `maxBytes` from `start`, which must be a boundary at or before the tail.
        func read(from start: ReadStart, maxBytes: Int) -> Result<ReadResult, ProtocolError> {
            let from: UInt64
            switch start {
            case .beginning: from = 0
            case .now: from = log.length
            case .offset(let offset):
                guard offset.position <= log.length else {
                    return .failure(ProtocolError(.badRequest, "offset is beyond the end of the stream"))
                }
                guard log.isBoundary(offset.position) else {
                    return .failure(ProtocolError(.badRequest, "offset is not a message boundary"))
                }
                from = offset.position
            }
            let end = log.readEnd(from: from, maxBytes: maxBytes)
            return .success(ReadResult(
                info: info(), start: StreamOffset(position: from), end: StreamOffset(position: end),
                chunks: log.bytes(from: from, to: end)))
        }

        mutating func write(_ body: Body, messages: [Range<Int>]) {
            let separator: UInt8? = contentType.isJSON ? UInt8(ascii: ",") : nil
            for range in messages where !range.isEmpty || separator != nil {
                log.append(body.bytes, range, suffix: separator)
            }
        }
    }

    private struct State {
        var streams: [StreamKey: Stream] = [:]
        var nextID: UInt64 = 1
        var nextWaiterID: UInt64 = 1

        /// The stream at `path`, soft-deleted ones included; one whose lifetime has ended is
        /// retired first (its waiters returned for waking).
        mutating func lookup(_ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>]) -> Stream? {
            guard let stream = streams[key] else { return nil }
            if !stream.softDeleted && stream.isExpired(at: now) {
                retire(key, woken: &woken)
            }
            return streams[key]
        }

        /// The stream at `path` if a client may use it: 404 when there is none, 410 when it is
        /// soft-deleted.
        mutating func live(_ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>])
            -> Result<Stream, ProtocolError>
        {
            guard let stream = lookup(key, now: now, woken: &woken) else { return .failure(MemoryStore.notFound) }
            return stream.softDeleted ? .failure(ForkErrors.gone) : .success(stream)
        }

        /// Runs `body` on the live stream at `key` in place. Mutating a copy instead would share
        /// the log's open segment with the dictionary and make the next write copy it whole.
        mutating func modify<R>(
            _ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>], _ body: (inout Stream) -> Result<R, ProtocolError>
        ) -> Result<R, ProtocolError> {
            switch live(key, now: now, woken: &woken) {
            case .failure(let error): return .failure(error)
            case .success: return body(&streams[key]!)
            }
        }

        /// Deletes a stream (a client's DELETE, or its lifetime ended): soft-deletes it while
        /// forks use its data, removes it otherwise.
        mutating func retire(_ key: StreamKey, woken: inout [EventLoopPromise<StoreWait.Outcome>]) {
            guard let stream = streams[key] else { return }
            if stream.forkCount > 0 {
                streams[key]!.softDeleted = true
                woken += streams[key]!.waiters.takeAll()
            } else {
                remove(key, woken: &woken)
            }
        }

        /// Removes a stream and gives back its reference on its source; a soft-deleted source
        /// left without forks goes too, and so on up the chain (§4.2's cascade).
        private mutating func remove(_ key: StreamKey, woken: inout [EventLoopPromise<StoreWait.Outcome>]) {
            var next: StreamKey? = key
            while let current = next, let removed = streams.removeValue(forKey: current) {
                woken += removed.waiters.all
                next = nil
                if let source = removed.sourceKey, streams[source] != nil {
                    streams[source]!.forkCount -= 1
                    if streams[source]!.forkCount == 0 && streams[source]!.softDeleted { next = source }
                }
            }
        }

        /// The layers a read of `key` crosses: its source's bytes below its fork point (and
        /// theirs), then its own.
        func layers(_ key: StreamKey) -> [ForkLayer<StreamKey>] {
            ForkLayers.collect(key) { key in
                streams[key].map {
                    ForkLayers.Facts(base: $0.base, tail: $0.log.length, boundaries: $0.log.messageBoundaries, source: $0.sourceKey)
                }
            }
        }

        /// A read of a fork: planned over its layers, each part's bytes from the stream that holds them.
        func layeredRead(_ key: StreamKey, from start: ReadStart, maxBytes: Int) -> Result<ReadResult, ProtocolError> {
            let stream = streams[key]!
            let planned = ForkLayers.plan(layers(key), tail: stream.log.length, from: start, maxBytes: maxBytes)
            return planned.map { plan in
                ReadResult(
                    info: stream.info(), start: StreamOffset(position: plan.start), end: StreamOffset(position: plan.end),
                    chunks: plan.pieces.flatMap { streams[$0.owner]!.log.bytes(from: $0.range.lowerBound, to: $0.range.upperBound) })
            }
        }

        /// Makes a fork of the stream at `command.fork.source` at `key`.
        mutating func createFork(
            _ key: StreamKey, _ command: CreateCommand, _ fork: ForkCommand, messages: [Range<Int>], id: String, now: Double,
            woken: inout [EventLoopPromise<StoreWait.Outcome>]
        ) -> Result<CreateResult, ProtocolError> {
            let sourceKey = StreamKey(fork.source)
            guard let source = lookup(sourceKey, now: now, woken: &woken) else { return .failure(ForkErrors.sourceNotFound) }
            guard !source.softDeleted else { return .failure(ForkErrors.sourceGone) }
            guard ForkLayers.depth(of: sourceKey, source: { streams[$0]?.sourceKey }) < ForkLayers.maxDepth else {
                return .failure(ForkLayers.tooDeep)
            }
            if let type = command.contentType, type != source.contentType { return .failure(ForkErrors.typeMismatch) }
            let anchor = fork.offset ?? source.tail
            let point = ForkLayers.forkPoint(
                layers(sourceKey), tail: source.log.length, anchor: anchor.position, subOffset: fork.subOffset,
                json: source.contentType.isJSON)
            switch point {
            case .failure(let error):
                return .failure(error)
            case .success(let point):
                var stream = Stream(
                    id: id, contentType: source.contentType,
                    lifetime: StreamLifetime.forFork(requested: command.lifetime, source: source.lifetime),
                    log: MemoryLog(framed: source.contentType.isJSON, base: point), lastAccess: now)
                stream.base = point
                stream.fork = ForkOrigin(source: fork.source, anchor: anchor, subOffset: fork.subOffset)
                stream.sourceKey = sourceKey
                stream.write(command.body, messages: messages)
                stream.closed = command.closed
                streams[key] = stream
                streams[sourceKey]!.forkCount += 1
                return .success(CreateResult(created: true, info: stream.info()))
            }
        }
    }

    private static let notFound = ProtocolError(.notFound, "stream not found")

    public var streamCount: Int { state.withLockedValue { $0.streams.values.count { !$0.softDeleted } } }

    public var streamNames: [String] {
        state.withLockedValue { state in
            state.streams.compactMap { $0.value.softDeleted ? nil : String(decoding: $0.key.bytes, as: UTF8.self) }
        }
    }

    public func create(_ path: String, _ command: CreateCommand, on loop: any EventLoop) -> EventLoopFuture<CreateResult> {
        let now = clock()
        let key = StreamKey(path)
        let messages: [Range<Int>]
        switch command.body.messages {
        case .success(let ranges): messages = ranges
        case .failure(let error): return loop.makeFailedFuture(error)
        }
        if case .expiresAt(let instant, _) = command.lifetime, instant <= now {
            return loop.makeFailedFuture(ProtocolError(.badRequest, "Stream-Expires-At is in the past"))
        }
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let result: Result<CreateResult, ProtocolError> = state.withLockedValue { state in
            if let existing = state.lookup(key, now: now, woken: &woken) {
                guard !existing.softDeleted else { return .failure(ForkErrors.nameTaken) }
                let source = command.fork.flatMap { state.streams[StreamKey($0.source)] }.map { (tail: $0.tail, lifetime: $0.lifetime) }
                guard command.matches(contentType: existing.contentType, lifetime: existing.lifetime, closed: existing.closed,
                                      fork: existing.fork, source: source)
                else {
                    return .failure(ProtocolError(.conflict, "stream exists with a different configuration"))
                }
                return .success(CreateResult(created: false, info: existing.info()))
            }
            let id = "\(incarnation)-\(state.nextID)"
            state.nextID += 1
            if let fork = command.fork {
                return state.createFork(key, command, fork, messages: messages, id: id, now: now, woken: &woken)
            }
            let contentType = command.contentType ?? .octetStream
            var stream = Stream(
                id: id, contentType: contentType, lifetime: command.lifetime,
                log: MemoryLog(framed: contentType.isJSON), lastAccess: now)
            stream.write(command.body, messages: messages)
            stream.closed = command.closed
            state.streams[key] = stream
            return .success(CreateResult(created: true, info: stream.info()))
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(result.mapError { $0 as any Error })
    }

    public func append(_ path: String, _ command: AppendCommand, on loop: any EventLoop) -> EventLoopFuture<AppendResult> {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let result: Result<AppendResult, ProtocolError> = state.withLockedValue { state in
            var appended: [EventLoopPromise<StoreWait.Outcome>] = []
            let outcome = state.modify(key, now: now, woken: &woken) { stream in
                let outcome = Self.apply(command, to: &stream, now: now)
                if case .success(let result) = outcome, !result.duplicate {
                    stream.touch(now)
                    appended = stream.waiters.takeAll()
                }
                return outcome
            }
            woken += appended
            return outcome
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(result.mapError { $0 as any Error })
    }

    /// Runs the shared append rules against the stream and, if they accept, writes the bytes and
    /// the new state under the same lock: nothing changes unless every check passes.
    private static func apply(_ command: AppendCommand, to stream: inout Stream, now: Double) -> Result<AppendResult, ProtocolError> {
        let context = AppendContext(
            contentType: stream.contentType, tail: stream.tail, closed: stream.closed, closedBy: stream.closedBy,
            lastSeq: stream.lastSeq, producerState: command.producer.flatMap { stream.producers[StreamKey($0.id)] })
        switch AppendRules.decide(command, in: context) {
        case .duplicate(let result):
            return .success(result)
        case .reject(let error):
            return .failure(error)
        case .accept(let accepted):
            stream.write(command.body, messages: accepted.messages)
            if let seq = accepted.seq { stream.lastSeq = seq }
            if let producer = command.producer, let state = accepted.producerState {
                stream.producers[StreamKey(producer.id)] = state
                if accepted.closes { stream.closedBy = producer }
            }
            if accepted.closes { stream.closed = true }
            return .success(AppendResult(tail: stream.tail, closed: stream.closed, producer: accepted.producerState, duplicate: false))
        }
    }

    public func read(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let result: Result<ReadResult, ProtocolError> = state.withLockedValue { state in
            let touched = state.modify(key, now: now, woken: &woken) { stream -> Result<Bool, ProtocolError> in
                if touch { stream.touch(now) }
                return .success(stream.sourceKey != nil)
            }
            switch touched {
            case .failure(let error): return .failure(error)
            case .success(true): return state.layeredRead(key, from: start, maxBytes: maxBytes)
            case .success(false): return state.streams[key]!.read(from: start, maxBytes: maxBytes)
            }
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(result.mapError { $0 as any Error })
    }

    public func info(_ path: String, on loop: any EventLoop) -> EventLoopFuture<StreamInfo> {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let info = state.withLockedValue { $0.live(key, now: now, woken: &woken).map { $0.info() } }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(info.mapError { $0 as any Error })
    }

    public func delete(_ path: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let found: Result<Void, ProtocolError> = state.withLockedValue { state in
            state.live(key, now: now, woken: &woken).map { _ in state.retire(key, woken: &woken) }
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(found.mapError { $0 as any Error })
    }

    public func waitForChange(_ path: String, after offset: StreamOffset, on loop: any EventLoop) -> StoreWait {
        let now = clock()
        let key = StreamKey(path)
        let promise = loop.makePromise(of: StoreWait.Outcome.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let id: UInt64 = state.withLockedValue { state in
            let id = state.nextWaiterID
            state.nextWaiterID += 1
            let registered = state.modify(key, now: now, woken: &woken) { stream -> Result<Bool, ProtocolError> in
                guard !stream.closed, stream.log.length <= offset.position else { return .success(false) }
                stream.waiters.add(id, promise)
                return .success(true)
            }
            if (try? registered.get()) != true { woken.append(promise) }
            return id
        }
        StreamWaiters.wake(woken)
        return StoreWait(path: path, id: id, future: promise.futureResult)
    }

    public func cancel(_ wait: StoreWait) {
        let promise = state.withLockedValue { $0.streams[StreamKey(wait.path)]?.waiters.remove(wait.id) }
        promise?.succeed(.cancelled)
    }

    /// Retires streams whose lifetime has ended (soft-deleting those that forks still use) and
    /// wakes their waiters; returns how many. Expiry is also enforced lazily on every access, so
    /// this only reclaims memory.
    @discardableResult
    public func sweepExpired() -> Int {
        let now = clock()
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let removed: Int = state.withLockedValue { state in
            let expired = state.streams.filter { !$0.value.softDeleted && $0.value.isExpired(at: now) }.map(\.key)
            for key in expired { state.retire(key, woken: &woken) }
            return expired.count
        }
        StreamWaiters.wake(woken)
        return removed
    }

    public func sweepExpired(on loop: any EventLoop) -> EventLoopFuture<Int> {
        loop.makeSucceededFuture(sweepExpired())
    }
}
