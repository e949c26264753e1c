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

        /// The live stream at `path`; an expired one is removed (its waiters returned for waking).
        mutating func lookup(_ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>]) -> Stream? {
            guard let stream = streams[key] else { return nil }
            if stream.isExpired(at: now) {
                woken += streams.removeValue(forKey: key)!.waiters.all
                return nil
            }
            return stream
        }

        /// Runs `body` on the live stream at `key` in place. Mutating a copy instead would share
        /// the log's open segment with the dictionary and make the next write copy it whole.
        mutating func modify<R>(
            _ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>], _ body: (inout Stream) -> R
        ) -> R? {
            guard lookup(key, now: now, woken: &woken) != nil else { return nil }
            return body(&streams[key]!)
        }
    }

    private static let notFound = ProtocolError(.notFound, "stream not found")

    public var streamCount: Int { state.withLockedValue { $0.streams.count } }

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
                guard command.matches(contentType: existing.contentType, lifetime: existing.lifetime, closed: existing.closed) else {
                    return .failure(ProtocolError(.conflict, "stream exists with a different configuration"))
                }
                return .success(CreateResult(created: false, info: existing.info()))
            }
            var stream = Stream(
                id: "\(incarnation)-\(state.nextID)", contentType: command.contentType, lifetime: command.lifetime,
                log: MemoryLog(framed: command.contentType.isJSON), lastAccess: now)
            state.nextID += 1
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
            } ?? .failure(Self.notFound)
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
            state.modify(key, now: now, woken: &woken) { stream in
                if touch { stream.touch(now) }
                return stream.read(from: start, maxBytes: maxBytes)
            } ?? .failure(Self.notFound)
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(result.mapError { $0 as any Error })
    }

    public func info(_ path: String, on loop: any EventLoop) -> EventLoopFuture<StreamInfo> {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let info = state.withLockedValue { $0.lookup(key, now: now, woken: &woken)?.info() }
        StreamWaiters.wake(woken)
        guard let info else { return loop.makeFailedFuture(Self.notFound) }
        return loop.makeSucceededFuture(info)
    }

    public func delete(_ path: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let found: Bool = state.withLockedValue { state in
            guard state.lookup(key, now: now, woken: &woken) != nil else { return false }
            woken += state.streams.removeValue(forKey: key)!.waiters.all
            return true
        }
        StreamWaiters.wake(woken)
        return found ? loop.makeSucceededVoidFuture() : loop.makeFailedFuture(Self.notFound)
    }

    public func waitForChange(_ path: String, after offset: StreamOffset, on loop: any EventLoop) -> StoreWait {
        let now = clock()
        let key = StreamKey(path)
        let promise = loop.makePromise(of: StoreWait.Outcome.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let id: UInt64 = state.withLockedValue { state in
            let id = state.nextWaiterID
            state.nextWaiterID += 1
            let registered = state.modify(key, now: now, woken: &woken) { stream -> Bool in
                guard !stream.closed, stream.log.length <= offset.position else { return false }
                stream.waiters.add(id, promise)
                return true
            }
            if registered != true { woken.append(promise) }
            return id
        }
        StreamWaiters.wake(woken)
        return StoreWait(path: path, id: id, future: promise.futureResult)
    }

    public func cancel(_ wait: StoreWait) {
        let promise = state.withLockedValue { $0.streams[StreamKey(wait.path)]?.waiters.remove(wait.id) }
        promise?.succeed(.cancelled)
    }

    /// Removes expired streams and wakes their waiters; returns how many were removed. Expiry is
    /// also enforced lazily on every access, so this only reclaims memory.
    @discardableResult
    public func sweepExpired() -> Int {
        let now = clock()
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let removed: Int = state.withLockedValue { state in
            let expired = state.streams.filter { $0.value.isExpired(at: now) }.map(\.key)
            for key in expired { woken += state.streams.removeValue(forKey: key)!.waiters.all }
            return expired.count
        }
        StreamWaiters.wake(woken)
        return removed
    }

    public func sweepExpired(on loop: any EventLoop) -> EventLoopFuture<Int> {
        loop.makeSucceededFuture(sweepExpired())
    }
}
