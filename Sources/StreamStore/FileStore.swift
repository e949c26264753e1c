import DurableStreams
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A `StreamStore` on disk: each stream's bytes in append-only segment files, its metadata and
/// producer states in LMDB. An append is acknowledged only once it is durable (see
/// `FsyncPolicy`), and its bytes, its producer state and the stream's new end commit as one.
///
/// How an append commits:
/// 1. Under the store's lock, the shared append rules decide against the stream's state as it
///    will be once everything already accepted has committed, and the stream moves on to that
///    state; the bytes join the commit queue.
/// 2. One I/O thread drains the queue in batches: it writes the bytes at the stream's end,
///    syncs the files, then commits every new end and producer state in one LMDB transaction.
/// 3. Only then do readers see the bytes, waiters wake and writers are answered.
///
/// After a crash, LMDB holds the last committed end of every stream; segment bytes beyond it
/// (written but never acknowledged) are cut at start-up. So an append is present with its
/// producer state, or absent with the producer state before it, never torn.
///
/// All metadata lives in memory too, so `info`, validation and boundary checks never touch
/// disk; reads of recent bytes come from each stream's in-memory tail.
public final class FileStore: StreamStore, @unchecked Sendable {
    public typealias Clock = @Sendable () -> Double

    public let options: FileStoreOptions
    /// What start-up found and repaired.
    public let recovery: RecoveryReport
    private let clock: Clock
    private let files: StreamFiles
    private let lmdb: LMDBEnvironment
    private let pool: NIOThreadPool
    private let blocks: BlockCache
    /// Part of every stream id (and so of ETags): distinguishes this data directory's streams
    /// from those of a directory that was wiped and started again.
    private let incarnation: String

    // Everything below is guarded by `lock`. Critical sections do no I/O.
    private let lock = NIOLock()
    private var streams: [StreamKey: FileStream]
    private var nextStreamID: UInt64
    private var nextWaiterID: UInt64 = 1
    private var queue: [CommitJob] = []
    private var committing = false
    private var hotBytes = 0
    private var closing = false
    private var drained: [@Sendable () -> Void] = []
    private var stats = StoreStatistics()
    /// Deletes whose commit failed while their name was taken again, retried with the next batch.
    private var retryDeletes: [CommitJob] = []

    static let notFound = ProtocolError(.notFound, "stream not found")
    static let shuttingDown = ProtocolError(.serviceUnavailable, "the server is shutting down")

    /// Opens (creating if needed) the data directory and recovers every stream in it. Blocking:
    /// call it before serving, not on an event loop.
    public static func open(_ options: FileStoreOptions, clock: @escaping Clock = { Date().timeIntervalSince1970 }) throws
        -> FileStore
    {
        try FileStoreRecovery.open(options, clock: clock)
    }

    init(options: FileStoreOptions, clock: @escaping Clock, files: StreamFiles, lmdb: LMDBEnvironment, incarnation: String,
         streams: [StreamKey: FileStream], nextStreamID: UInt64, recovery: RecoveryReport)
    {
        self.options = options
        self.clock = clock
        self.files = files
        self.lmdb = lmdb
        self.incarnation = incarnation
        self.streams = streams
        self.nextStreamID = nextStreamID
        self.recovery = recovery
        self.blocks = BlockCache(capacity: options.blockCacheBytes)
        self.pool = NIOThreadPool(numberOfThreads: max(options.ioThreads, 1))
        pool.start()
    }

    public var streamCount: Int { lock.withLock { streams.values.count { $0.durable && !$0.record.softDeleted } } }

    public var streamNames: [String] {
        lock.withLock {
            streams.compactMap { $0.value.durable && !$0.value.record.softDeleted ? String(decoding: $0.key.bytes, as: UTF8.self) : nil }
        }
    }

    /// Open segment and index files (for metrics and tests).
    public var openFileHandles: Int { files.handles.openCount }

    public var statistics: StoreStatistics? {
        var snapshot = lock.withLock {
            var snapshot = stats
            snapshot.queuedWrites = queue.count
            snapshot.hotTailBytes = hotBytes
            return snapshot
        }
        snapshot.openFiles = files.handles.openCount
        snapshot.blockCacheBytes = blocks.byteCount
        return snapshot
    }

    // MARK: - Create

    public func create(_ path: String, _ command: CreateCommand, on loop: any EventLoop) -> EventLoopFuture<CreateResult> {
        let now = clock()
        let messages: [Range<Int>]
        switch command.body.messages {
        case .success(let ranges): messages = ranges
        case .failure(let error): return loop.makeFailedFuture(error)
        }
        if case .expiresAt(let instant, _) = command.lifetime, instant <= now {
            return loop.makeFailedFuture(ProtocolError(.badRequest, "Stream-Expires-At is in the past"))
        }
        let key = StreamKey(path)
        let promise = loop.makePromise(of: CreateResult.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let outcome: Result<CreateResult, ProtocolError>? = lock.withLock {
            guard !closing else { return .failure(Self.shuttingDown) }
            if let existing = lookup(key, now: now, woken: &woken) {
                guard !existing.record.softDeleted else { return .failure(ForkErrors.nameTaken) }
                let source = command.fork.flatMap { streams[StreamKey($0.source)] }.map {
                    (tail: StreamOffset(position: $0.durableTail), lifetime: $0.record.lifetime)
                }
                guard command.matches(contentType: existing.record.contentType, lifetime: existing.record.lifetime,
                                      closed: existing.record.closed, fork: existing.record.fork, source: source)
                else {
                    let conflict = ProtocolError(.conflict, "stream exists with a different configuration")
                    if existing.inFlight == 0 { return .failure(conflict) }
                    enqueue(CommitJob(stream: existing.id, key: key, work: .barrier, completion: .rejectCreate(promise, conflict)))
                    return nil
                }
                let result = CreateResult(created: false, info: existing.pendingInfo(incarnation))
                if existing.inFlight == 0 { return .success(result) }
                // Its creation (or an append) is not durable yet: answer once it is.
                enqueue(CommitJob(stream: existing.id, key: key, work: .barrier, completion: .create(promise, result)))
                return nil
            }
            var record = StreamRecord(
                name: path, contentType: command.contentType ?? .octetStream, lifetime: command.lifetime, lastAccess: now,
                tail: 0, messageCount: 0, closed: command.closed, closedBy: nil, lastSeq: nil, nextProducerSerial: 0)
            var source: SourceLink?
            if let fork = command.fork {
                switch forkRecord(fork, command, now: now, woken: &woken) {
                case .failure(let error): return .failure(error)
                case .success(let made):
                    record = made.applied(to: record)
                    source = made.source
                }
            }
            let framed = FramedAppend(command.body, messages: messages, json: record.contentType.isJSON, at: record.base)
            record.tail = framed.end
            record.messageCount = UInt64(framed.ends.count)
            let id = nextStreamID
            nextStreamID += 1
            var stream = FileStream(id: id, record: record, json: record.contentType.isJSON, hotTailBytes: options.hotTailBytes)
            stream.durable = false
            stream.durableTail = record.tail
            stream.durableClosed = record.closed
            for end in framed.ends { stream.boundaries.append(end) }
            if framed.bytes.readableBytes > 0 { stream.segments = [record.base] }
            stream.hot.append(framed.bytes, at: record.base)
            hotBytes += stream.hot.byteCount
            stream.inFlight = 1
            streams[key] = stream
            // The reference is taken with the fork's creation; a failed commit gives it back.
            if let source { streams[source.key]!.forkCount += 1 }
            let result = CreateResult(created: true, info: stream.pendingInfo(incarnation))
            enqueue(CommitJob(
                stream: id, key: key, work: .create(framed), record: record, completion: .create(promise, result)))
            trimHotTails(keeping: key)
            return nil
        }
        StreamWaiters.wake(woken)
        Self.answer(promise, outcome)
        return promise.futureResult
    }

    /// What a fork takes from its source, checked against the source's committed state.
    private struct MadeFork {
        var source: SourceLink
        var origin: ForkOrigin
        var point: UInt64
        var contentType: ContentType
        var lifetime: StreamLifetime

        func applied(to record: StreamRecord) -> StreamRecord {
            var record = record
            record.contentType = contentType
            record.lifetime = lifetime
            record.base = point
            record.fork = origin
            record.sourceID = source.id
            return record
        }
    }

    /// Resolves a fork request against its source (§4.2): 404 without one, 409 when it is
    /// soft-deleted or of another type, 400 when the divergence point names no data. Under the lock.
    private func forkRecord(_ fork: ForkCommand, _ command: CreateCommand, now: Double,
                            woken: inout [EventLoopPromise<StoreWait.Outcome>]) -> Result<MadeFork, ProtocolError> {
        let sourceKey = StreamKey(fork.source)
        guard let source = lookup(sourceKey, now: now, woken: &woken), source.durable else {
            return .failure(ForkErrors.sourceNotFound)
        }
        guard !source.record.softDeleted else { return .failure(ForkErrors.sourceGone) }
        guard ForkLayers.depth(of: sourceKey, source: { streams[$0]?.sourceKey }) < ForkLayers.maxDepth else {
            return .failure(ForkLayers.tooDeep)
        }
        if let type = command.contentType, type != source.record.contentType { return .failure(ForkErrors.typeMismatch) }
        let anchor = fork.offset ?? StreamOffset(position: source.durableTail)
        let point = ForkLayers.forkPoint(
            layers(sourceKey), tail: source.durableTail, anchor: anchor.position, subOffset: fork.subOffset,
            json: source.record.contentType.isJSON)
        return point.map { point in
            MadeFork(
                source: SourceLink(key: sourceKey, id: source.id),
                origin: ForkOrigin(source: fork.source, anchor: anchor, subOffset: fork.subOffset), point: point,
                contentType: source.record.contentType,
                lifetime: StreamLifetime.forFork(requested: command.lifetime, source: source.record.lifetime))
        }
    }

    /// The layers a read of `key` crosses, committed bytes only. Under the lock.
    private func layers(_ key: StreamKey) -> [ForkLayer<StreamKey>] {
        ForkLayers.collect(key) { streams[$0]?.layerFacts() }
    }

    // MARK: - Append

    public func append(_ path: String, _ command: AppendCommand, on loop: any EventLoop) -> EventLoopFuture<AppendResult> {
        let now = clock()
        let key = StreamKey(path)
        let promise = loop.makePromise(of: AppendResult.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let outcome: Result<AppendResult, ProtocolError>? = lock.withLock {
            guard !closing else { return .failure(Self.shuttingDown) }
            guard let found = lookup(key, now: now, woken: &woken) else { return .failure(Self.notFound) }
            guard !found.record.softDeleted else { return .failure(ForkErrors.gone) }
            let outcome: Result<AppendResult, ProtocolError>? = modify(key) { stream in
                if stream.broken {
                    return .failure(ProtocolError(.internalServerError, "this stream's files could not be repaired after a storage error; restart the server"))
                }
                let producerKey = command.producer.map { StreamKey($0.id) }
                let context = AppendContext(
                    contentType: stream.record.contentType, tail: StreamOffset(position: stream.record.tail),
                    closed: stream.record.closed, closedBy: stream.record.closedBy, lastSeq: stream.record.lastSeq,
                    producerState: producerKey.flatMap { stream.producers[$0]?.state })
                switch AppendRules.decide(command, in: context) {
                case .reject(let error):
                    if stream.inFlight == 0 { return .failure(error) }
                    // Decided on state that is not durable yet (a close, an epoch, a Stream-Seq
                    // still on its way to disk): answered once it is, and if it never becomes
                    // durable the client gets the storage error and retries against what is.
                    enqueue(CommitJob(stream: stream.id, key: key, work: .barrier, completion: .reject(promise, error)))
                    return nil
                case .duplicate(let result):
                    if stream.inFlight == 0 { return .success(result) }
                    // The original may still be on its way to disk: a retry is answered only
                    // once it is there, so no client is told "done" about bytes a crash could lose.
                    enqueue(CommitJob(stream: stream.id, key: key, work: .barrier, completion: .append(promise, result)))
                    return nil
                case .accept(let accepted):
                    let job = accept(accepted, command, into: &stream, key: key, now: now, promise: promise)
                    enqueue(job)
                    return nil
                }
            } ?? .failure(Self.notFound)
            if outcome == nil { trimHotTails(keeping: key) }
            return outcome
        }
        StreamWaiters.wake(woken)
        Self.answer(promise, outcome)
        return promise.futureResult
    }

    /// Moves the stream to its state after the append and describes the write. Under the lock.
    private func accept(
        _ accepted: AppendDecision.Accepted, _ command: AppendCommand, into stream: inout FileStream, key: StreamKey,
        now: Double, promise: EventLoopPromise<AppendResult>
    ) -> CommitJob {
        let position = stream.record.tail
        let framed = FramedAppend(command.body, messages: accepted.messages, json: stream.record.contentType.isJSON, at: position)
        var newSegment = false
        if framed.bytes.readableBytes > 0 {
            if let last = stream.segments.last, position - last < UInt64(options.segmentBytes) {
                // keeps writing the open segment
            } else {
                stream.segments.append(position)
                newSegment = true
            }
        }
        let indexPosition = UInt64(stream.boundaries.count)
        let previousRecord = stream.record
        var previousProducer: (key: StreamKey, slot: (serial: UInt64, state: ProducerState)?)?
        stream.record.tail += UInt64(framed.bytes.readableBytes)
        stream.record.messageCount += UInt64(framed.ends.count)
        for end in framed.ends { stream.boundaries.append(end) }
        if let seq = accepted.seq { stream.record.lastSeq = seq }
        var producer: (serial: UInt64, record: ProducerRecord)?
        if let claim = command.producer, let state = accepted.producerState {
            let producerKey = StreamKey(claim.id)
            previousProducer = (producerKey, stream.producers[producerKey])
            let serial = stream.producers[producerKey]?.serial ?? stream.record.nextProducerSerial
            if stream.producers[producerKey] == nil { stream.record.nextProducerSerial += 1 }
            stream.producers[producerKey] = (serial, state)
            producer = (serial, ProducerRecord(id: claim.id, state: state))
            if accepted.closes { stream.record.closedBy = claim }
        }
        if accepted.closes { stream.record.closed = true }
        if stream.record.lifetime.isSliding { stream.record.lastAccess = now }
        hotBytes -= stream.hot.byteCount
        stream.hot.append(framed.bytes, at: position)
        hotBytes += stream.hot.byteCount
        stream.inFlight += 1
        let result = AppendResult(
            tail: StreamOffset(position: stream.record.tail), closed: stream.record.closed, producer: accepted.producerState,
            duplicate: false)
        let write = AppendWrite(
            framed: framed, segmentStart: stream.segments.last ?? position, newSegment: newSegment,
            indexPosition: indexPosition, producer: producer, closes: accepted.closes,
            undo: AppendWrite.Undo(record: previousRecord, producer: previousProducer))
        return CommitJob(stream: stream.id, key: key, work: .append(write), record: stream.record, completion: .append(promise, result))
    }

    // MARK: - Read

    /// Reads from disk at least this large are sent from the file (`sendfile`) by `readForSending`:
    /// copying them through memory costs more than opening a descriptor.
    static let sendFileThreshold: UInt64 = 64 << 10

    public func read(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        read(path, from: start, maxBytes: maxBytes, touch: touch, sendFiles: false, on: loop)
    }

    public func readForSending(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        read(path, from: start, maxBytes: maxBytes, touch: touch, sendFiles: true, on: loop)
    }

    private func read(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, sendFiles: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        let now = clock()
        let key = StreamKey(path)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let plan: Result<ReadPlan, ProtocolError> = lock.withLock {
            guard let found = lookup(key, now: now, woken: &woken), found.durable else { return .failure(Self.notFound) }
            guard !found.record.softDeleted else { return .failure(ForkErrors.gone) }
            if touch && found.record.lifetime.isSliding {
                modify(key) { stream in
                    stream.record.lastAccess = now
                    stream.accessDirty = true
                }
            }
            if found.sourceKey != nil { return planLayeredRead(key, from: start, maxBytes: maxBytes) }
            return modify(key) { stream in
                let plan = stream.planRead(from: start, maxBytes: maxBytes, incarnation: incarnation)
                switch plan {
                case .success(.fromDisk(let id, _, let info, let from, let to)):
                    // Whole blocks of history already in memory answer here, under the lock
                    // already held (the block cache's own lock never takes this one).
                    if !(sendFiles && to - from >= Self.sendFileThreshold), let cached = blocks.bytes(id, from: from, to: to) {
                        stats.cachedReads += 1
                        return .success(.ready(ReadResult(
                            info: info, start: StreamOffset(position: from), end: StreamOffset(position: to), chunks: cached)))
                    }
                    stats.diskReads += 1
                case .success(.ready): stats.memoryReads += 1
                case .success(.layered), .failure: break
                }
                return plan
            } ?? .failure(Self.notFound)
        }
        StreamWaiters.wake(woken)
        switch plan {
        case .failure(let error):
            return loop.makeFailedFuture(error)
        case .success(.ready(let result)):
            return loop.makeSucceededFuture(result)
        case .success(.layered(let info, let from, let to, let parts)):
            return readParts(parts, info: info, from: from, to: to, key: key, on: loop)
        case .success(.fromDisk(let id, let segments, let info, let from, let to)):
            let start = StreamOffset(position: from)
            let end = StreamOffset(position: to)
            let sendsFile = sendFiles && to - from >= Self.sendFileThreshold
            let files = self.files
            let blocks = self.blocks
            let promise = loop.makePromise(of: ReadResult.self)
            pool.submit { state in
                guard case .active = state else { return promise.fail(Self.shuttingDown) }
                do {
                    var result = ReadResult(info: info, start: start, end: end, chunks: [])
                    if sendsFile, let regions = files.regions(id, segments: segments, from: from, to: to) {
                        result.files = ReadFiles(regions: regions)
                    } else {
                        result.chunks = try Self.readThroughCache(blocks, files, id, segments: segments, from: from, to: to, tail: info.tail.position)
                    }
                    promise.succeed(result)
                } catch {
                    // Deleted (or expired) while the read was on its way: not found, as it would
                    // have been a moment later. Otherwise the disk failed.
                    let stillThere = self.lock.withLock { self.streams[key]?.id == id }
                    promise.fail(stillThere ? ProtocolError(.internalServerError, "storage error while reading: \(error)") : Self.notFound)
                }
            }
            return promise.futureResult
        }
    }

    /// Plans a read of a fork across its layers: each part from the hot tail or block cache of
    /// the stream that holds it, or from that stream's files. Under the lock.
    private func planLayeredRead(_ key: StreamKey, from start: ReadStart, maxBytes: Int) -> Result<ReadPlan, ProtocolError> {
        let stream = streams[key]!
        return ForkLayers.plan(layers(key), tail: stream.durableTail, from: start, maxBytes: maxBytes).map { plan in
            var parts: [ReadPart] = []
            for (owner, range) in plan.pieces {
                let holder = streams[owner]!
                if let bytes = holder.hot.bytes(from: range.lowerBound, to: range.upperBound) {
                    parts.append(.bytes([bytes]))
                } else if let cached = blocks.bytes(holder.id, from: range.lowerBound, to: range.upperBound) {
                    parts.append(.bytes(cached))
                } else {
                    parts.append(.disk(stream: holder.id, segments: holder.segments, base: holder.record.base,
                                       tail: holder.durableTail, range: range))
                }
            }
            if parts.contains(where: \.isOnDisk) {
                stats.diskReads += 1
            } else {
                stats.memoryReads += 1
            }
            return .layered(info: stream.info(incarnation), from: plan.start, to: plan.end, parts: parts)
        }
    }

    /// Gathers a layered read's parts, reading those on disk on an I/O thread.
    private func readParts(_ parts: [ReadPart], info: StreamInfo, from: UInt64, to: UInt64, key: StreamKey, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        let result = ReadResult(info: info, start: StreamOffset(position: from), end: StreamOffset(position: to), chunks: [])
        guard parts.contains(where: \.isOnDisk) else {
            var ready = result
            for case .bytes(let chunks) in parts { ready.chunks += chunks }
            return loop.makeSucceededFuture(ready)
        }
        let files = self.files
        let blocks = self.blocks
        let promise = loop.makePromise(of: ReadResult.self)
        pool.submit { state in
            guard case .active = state else { return promise.fail(Self.shuttingDown) }
            do {
                var read = result
                for part in parts {
                    switch part {
                    case .bytes(let chunks):
                        read.chunks += chunks
                    case .disk(let id, let segments, let base, let tail, let range):
                        read.chunks += try Self.readThroughCache(
                            blocks, files, id, segments: segments, from: range.lowerBound, to: range.upperBound, tail: tail, base: base)
                    }
                }
                promise.succeed(read)
            } catch {
                let stillThere = self.lock.withLock { self.streams[key].map { !$0.record.softDeleted } ?? false }
                promise.fail(stillThere ? ProtocolError(.internalServerError, "storage error while reading: \(error)") : Self.notFound)
            }
        }
        return promise.futureResult
    }

    /// Reads `[from, to)` in whole blocks where they are committed, keeping them for the next
    /// reader; the part of the last block that is not whole yet is read as it is. On an I/O thread.
    private static func readThroughCache(
        _ blocks: BlockCache, _ files: StreamFiles, _ id: UInt64, segments: [UInt64], from: UInt64, to: UInt64, tail: UInt64,
        base: UInt64 = 0
    ) throws -> [ByteBuffer] {
        let size = BlockCache.blockSize
        let firstBlock = from / size
        let lastWhole = tail / size  // blocks below this index are whole and committed
        // A fork's files start at its fork point: a block reaching below it is not in them.
        guard blocks.capacity > 0, firstBlock < lastWhole, firstBlock * size >= base else {
            return try files.read(id, segments: segments, from: from, to: to)
        }
        let wholeEnd = min(((to + size - 1) / size), lastWhole) * size
        for index in firstBlock..<(wholeEnd / size) where blocks.bytes(id, from: index * size, to: (index + 1) * size) == nil {
            var block = ByteBuffer()
            block.reserveCapacity(Int(size))
            for var chunk in try files.read(id, segments: segments, from: index * size, to: (index + 1) * size) {
                block.writeBuffer(&chunk)
            }
            blocks.insert(id, index: index, block)
        }
        var parts = try blocks.bytes(id, from: from, to: min(to, wholeEnd)) ?? files.read(id, segments: segments, from: from, to: min(to, wholeEnd))
        if to > wholeEnd {
            parts += try files.read(id, segments: segments, from: wholeEnd, to: to)
        }
        return parts
    }

    public func info(_ path: String, on loop: any EventLoop) -> EventLoopFuture<StreamInfo> {
        let now = clock()
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let info: Result<StreamInfo, ProtocolError> = lock.withLock {
            guard let stream = lookup(StreamKey(path), now: now, woken: &woken), stream.durable else { return .failure(Self.notFound) }
            return stream.record.softDeleted ? .failure(ForkErrors.gone) : .success(stream.info(incarnation))
        }
        StreamWaiters.wake(woken)
        return loop.makeCompletedFuture(info.mapError { $0 as any Error })
    }

    // MARK: - Delete

    public func delete(_ path: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let now = clock()
        let key = StreamKey(path)
        let promise = loop.makePromise(of: Void.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let refusal: ProtocolError? = lock.withLock {
            guard !closing else { return Self.shuttingDown }
            guard let stream = lookup(key, now: now, woken: &woken), stream.durable else { return Self.notFound }
            guard !stream.record.softDeleted else { return ForkErrors.gone }
            retire(key, woken: &woken, completion: .void(promise))
            return nil
        }
        StreamWaiters.wake(woken)
        if let refusal { promise.fail(refusal) }
        return promise.futureResult
    }

    // MARK: - Waiting

    public func waitForChange(_ path: String, after offset: StreamOffset, on loop: any EventLoop) -> StoreWait {
        let now = clock()
        let key = StreamKey(path)
        let promise = loop.makePromise(of: StoreWait.Outcome.self)
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let id: UInt64 = lock.withLock {
            let id = nextWaiterID
            nextWaiterID += 1
            var registered = false
            if let found = lookup(key, now: now, woken: &woken), found.durable, !found.record.softDeleted {
                registered = modify(key) { stream -> Bool in
                    guard !stream.durableClosed, stream.durableTail <= offset.position else { return false }
                    stream.waiters.add(id, promise)
                    return true
                } ?? false
            }
            if !registered { woken.append(promise) }
            return id
        }
        StreamWaiters.wake(woken)
        return StoreWait(path: path, id: id, future: promise.futureResult)
    }

    public func cancel(_ wait: StoreWait) {
        let promise = lock.withLock { modify(StreamKey(wait.path)) { $0.waiters.remove(wait.id) } ?? nil }
        promise?.succeed(.cancelled)
    }

    // MARK: - Expiry

    /// Removes expired streams and persists the access times of sliding-TTL streams that were
    /// read since the last sweep (so a restart does not expire a stream that was in use).
    public func sweepExpired(on loop: any EventLoop) -> EventLoopFuture<Int> {
        let now = clock()
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        let removed: Int = lock.withLock {
            guard !closing else { return 0 }
            let expired = streams.filter { $0.value.durable && !$0.value.record.softDeleted && $0.value.isExpired(at: now) }.map(\.key)
            for key in expired { retire(key, woken: &woken, completion: .none) }
            for key in streams.keys where streams[key]!.accessDirty && streams[key]!.durable {
                streams[key]!.accessDirty = false
                let stream = streams[key]!
                enqueue(CommitJob(stream: stream.id, key: key, work: .touch, record: stream.record, completion: .none))
            }
            return expired.count
        }
        StreamWaiters.wake(woken)
        return loop.makeSucceededFuture(removed)
    }

    // MARK: - Shutdown

    /// Finishes every queued commit, then closes files and LMDB. New writes are refused from now on.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shutdown { continuation.resume() }
        }
    }

    /// `shutdown()` for callers outside Swift concurrency: `done` runs on another thread once the
    /// store is closed.
    public func shutdown(then done: @escaping @Sendable () -> Void) {
        let closeNow: Bool = lock.withLock {
            closing = true
            if !committing && queue.isEmpty { return true }
            drained.append { [self] in close(then: done) }
            return false
        }
        if closeNow { close(then: done) }
    }

    private func close(then done: @escaping @Sendable () -> Void) {
        pool.shutdownGracefully(queue: .global()) { [files, lmdb] _ in
            files.handles.closeAll()
            lmdb.close()
            done()
        }
    }

    /// Completes a promise with an answer decided under the lock (`nil`: a commit will answer it).
    private static func answer<T: Sendable>(_ promise: EventLoopPromise<T>, _ outcome: Result<T, ProtocolError>?) {
        switch outcome {
        case .success(let result)?: promise.succeed(result)
        case .failure(let error)?: promise.fail(error)
        case nil: break
        }
    }

    // MARK: - Under the lock

    /// The stream at `key` (soft-deleted ones included), or `nil`; one whose lifetime has ended
    /// is retired on the way (its waiters woken).
    private func lookup(_ key: StreamKey, now: Double, woken: inout [EventLoopPromise<StoreWait.Outcome>]) -> FileStream? {
        guard let stream = streams[key] else { return nil }
        if stream.durable && !stream.record.softDeleted && stream.isExpired(at: now) {
            retire(key, woken: &woken, completion: .none)
        }
        return streams[key]
    }

    /// Deletes a stream (a client's DELETE, or its lifetime ended): soft-deletes it while forks
    /// use its data (§4.2), removes it otherwise.
    private func retire(_ key: StreamKey, woken: inout [EventLoopPromise<StoreWait.Outcome>], completion: CommitJob.Completion) {
        guard let stream = streams[key] else { return }
        guard stream.forkCount > 0 else { return remove(key, woken: &woken, completion: completion) }
        modify(key) { stream in
            stream.record.softDeleted = true
            woken += stream.waiters.takeAll()
        }
        enqueue(CommitJob(stream: stream.id, key: key, work: .softDelete, record: streams[key]!.record, completion: completion))
    }

    /// Gives back a fork's reference on its source once the fork's removal has committed (or
    /// its creation failed); a soft-deleted source left without forks is removed in turn, which
    /// continues up the chain as each removal commits (§4.2's cascade).
    private func release(_ source: SourceLink, woken: inout [EventLoopPromise<StoreWait.Outcome>]) {
        guard streams[source.key]?.id == source.id else { return }
        streams[source.key]!.forkCount -= 1
        let stream = streams[source.key]!
        if stream.forkCount <= 0 && stream.record.softDeleted {
            remove(source.key, woken: &woken, completion: .none)
        }
    }

    /// Runs `body` on the stream in place (a copy would share the in-memory tail and make the
    /// next append copy it).
    private func modify<R>(_ key: StreamKey, _ body: (inout FileStream) -> R) -> R? {
        guard streams[key] != nil else { return nil }
        return body(&streams[key]!)
    }

    /// Takes a stream out of the index and queues the removal of its metadata and files.
    private func remove(_ key: StreamKey, woken: inout [EventLoopPromise<StoreWait.Outcome>], completion: CommitJob.Completion) {
        guard var stream = streams.removeValue(forKey: key) else { return }
        woken += stream.waiters.takeAll()
        hotBytes -= stream.hot.byteCount
        stream.hot.drop()
        blocks.removeAll(stream: stream.id)
        let source = stream.record.sourceID.flatMap { id in stream.sourceKey.map { SourceLink(key: $0, id: id) } }
        enqueue(CommitJob(stream: stream.id, key: key, work: .delete(removed: stream, source: source), completion: completion))
    }

    private func enqueue(_ job: CommitJob) {
        queue.append(job)
        if !committing {
            committing = true
            pool.submit { [self] state in
                guard case .active = state else { return }
                drainQueue()
            }
        }
    }

    /// Keeps all streams' in-memory tails within the budget by dropping other streams' tails;
    /// their readers then read from disk (the page cache, usually).
    private func trimHotTails(keeping key: StreamKey) {
        guard hotBytes > options.hotTailBudgetBytes else { return }
        for other in streams.keys where other != key {
            hotBytes -= streams[other]!.hot.byteCount
            streams[other]!.hot.drop()
            if hotBytes <= options.hotTailBudgetBytes / 2 { break }
        }
    }

    // MARK: - Committing (on an I/O thread)

    /// Commits batches until the queue is empty. Only one thread runs this at a time.
    private func drainQueue() {
        while true {
            options.faults?.passGate()
            let jobs: [CommitJob] = lock.withLock {
                let take = options.fsync == .always ? 1 : queue.count
                var batch = Array(queue.prefix(take))
                queue.removeFirst(batch.count)
                if !batch.isEmpty {
                    batch = retryDeletes + batch
                    retryDeletes.removeAll()
                }
                if batch.isEmpty { committing = false }
                return batch
            }
            if jobs.isEmpty {
                let waiting: [@Sendable () -> Void] = lock.withLock {
                    guard closing else { return [] }
                    defer { drained.removeAll() }
                    return drained
                }
                waiting.forEach { $0() }
                return
            }
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try CommitBatch(jobs: jobs, files: files, lmdb: lmdb, fsync: options.fsync).run()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                lock.withLock {
                    stats.commits += 1
                    stats.committedWrites += jobs.count { $0.changesData }
                    stats.commitSeconds += seconds
                }
                committed(jobs)
            } catch {
                lock.withLock { stats.failedCommits += 1 }
                failed(jobs, error)
            }
        }
    }

    /// Makes the batch visible: readers see the bytes, waiters wake, writers are answered.
    private func committed(_ jobs: [CommitJob]) {
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        lock.withLock {
            for job in jobs {
                if case .delete(_, let source?) = job.work { release(source, woken: &woken) }
                guard streams[job.key]?.id == job.stream else { continue }  // deleted since
                modify(job.key) { stream in
                    switch job.work {
                    case .create:
                        stream.durable = true
                        stream.inFlight -= 1
                    case .append(let write):
                        stream.durableTail = max(stream.durableTail, write.framed.end)
                        if write.closes { stream.durableClosed = true }
                        stream.inFlight -= 1
                        woken += stream.waiters.takeAll()
                    case .delete, .touch, .barrier, .softDelete:
                        break
                    }
                }
            }
        }
        StreamWaiters.wake(woken)
        for job in jobs { job.completion.succeed() }
    }

    /// Nothing of the batch happened: its writers get the error, and the streams it touched go
    /// back to their committed state by undoing, newest first, every append of theirs that had
    /// not committed (appends queued behind the batch on those streams were decided on top of
    /// it, so they fail too). Files the batch left beyond the committed ends are removed at once
    /// (this is the only writer), so that nothing uncommitted is ever taken for committed data.
    private func failed(_ jobs: [CommitJob], _ error: any Error) {
        let storageError = (error as? StorageError) ?? (error as? LMDBError).map { StorageError(code: $0.code, operation: $0.operation) }
            ?? StorageError(code: EIO, operation: "\(error)")
        let touched = Set(jobs.compactMap { $0.changesData ? $0.stream : nil })
        var failedJobs = jobs
        var woken: [EventLoopPromise<StoreWait.Outcome>] = []
        var cleanups: [(id: UInt64, tail: UInt64, messageCount: UInt64)] = []
        var abandoned: [UInt64] = []
        lock.withLock {
            failedJobs += queue.filter { touched.contains($0.stream) && $0.work.isStreamWork }
            queue.removeAll { touched.contains($0.stream) && $0.work.isStreamWork }
            for job in failedJobs.reversed() where streams[job.key]?.id == job.stream {
                switch job.work {
                case .append(let write):
                    modify(job.key) { $0.undo(write.undo) }
                case .create:
                    // It never existed, nor did its reference on a source.
                    let stream = streams.removeValue(forKey: job.key)!
                    woken += stream.waiters.all
                    hotBytes -= stream.hot.byteCount
                    abandoned.append(stream.id)
                    if let id = stream.record.sourceID, let key = stream.sourceKey {
                        release(SourceLink(key: key, id: id), woken: &woken)
                    }
                case .softDelete:
                    // The client was told the delete failed: the stream is still there.
                    modify(job.key) { $0.record.softDeleted = false }
                case .delete, .touch, .barrier:
                    break
                }
            }
            for key in streams.keys where touched.contains(streams[key]!.id) {
                modify(key) { stream in
                    hotBytes -= stream.hot.byteCount
                    stream.trimToDurable()
                    hotBytes += stream.hot.byteCount
                    stream.inFlight = 0
                    cleanups.append((stream.id, stream.durableTail, stream.record.messageCount))
                }
            }
            // A delete that did not commit did not happen: the stream is back. If its name was
            // taken again meanwhile, the delete is retried with the next batch.
            for job in jobs {
                guard case .delete(let removed?, let source) = job.work else { continue }
                if streams[job.key] == nil {
                    streams[job.key] = removed
                } else {
                    retryDeletes.append(CommitJob(
                        stream: job.stream, key: job.key, work: .delete(removed: nil, source: source), completion: .none))
                }
            }
        }
        for id in abandoned { files.removeDirectory(id) }
        for cleanup in cleanups {
            do {
                try files.cut(cleanup.id, at: cleanup.tail, messageCount: cleanup.messageCount)
            } catch {
                // The files could not be brought back to the committed end: accept nothing more
                // on this stream until a restart, whose recovery cuts them.
                lock.withLock {
                    for key in streams.keys where streams[key]!.id == cleanup.id { streams[key]!.broken = true }
                }
            }
        }
        StreamWaiters.wake(woken)
        for job in failedJobs { job.completion.fail(storageError.protocolError) }
    }
}

/// Where `read` finds its bytes.
enum ReadPlan {
    case ready(ReadResult)
    case fromDisk(stream: UInt64, segments: [UInt64], info: StreamInfo, from: UInt64, to: UInt64)
    /// A fork's read: parts of several streams, in order.
    case layered(info: StreamInfo, from: UInt64, to: UInt64, parts: [ReadPart])
}

/// One part of a layered read: bytes already in memory, or a range of one stream's files.
enum ReadPart {
    case bytes([ByteBuffer])
    case disk(stream: UInt64, segments: [UInt64], base: UInt64, tail: UInt64, range: Range<UInt64>)

    var isOnDisk: Bool {
        if case .disk = self { return true }
        return false
    }
}
