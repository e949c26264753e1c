import DurableStreams
import NIOCore

/// One stream of a `FileStore`, as its index in memory holds it.
///
/// Two states live side by side. `record`, `producers` and `boundaries` are where the stream
/// will be once every accepted append has committed: the append rules decide against them.
/// `durableTail` and `durableClosed` are what has committed: readers, waiters and `info` see
/// only those, so nobody reads bytes that a crash could still take back.
struct FileStream {
    let id: UInt64
    var record: StreamRecord
    var producers: [StreamKey: (serial: UInt64, state: ProducerState)] = [:]
    var boundaries: MessageBoundaries
    /// Start positions of the segment files, ascending.
    var segments: [UInt64] = []
    var durableTail: UInt64 = 0
    var durableClosed = false
    /// Its creation has committed.
    var durable = true
    /// Creates and appends queued or being committed.
    var inFlight = 0
    /// Read since its access time was last written (sliding TTL).
    var accessDirty = false
    /// Its files could not be cut back after a failed commit: no more appends until a restart.
    var broken = false
    var hot: HotTail
    var waiters = StreamWaiters()
    /// Forks whose creation was accepted and whose deletion has not committed: while any are,
    /// deleting this stream only soft-deletes it. Not stored; recovery counts the fork records.
    var forkCount = 0

    /// The name of the stream this one was forked from.
    var sourceKey: StreamKey? { record.fork.map { StreamKey($0.source) } }

    /// What a read through this stream's layers needs to know of it (committed state only).
    func layerFacts() -> ForkLayers.Facts<StreamKey> {
        ForkLayers.Facts(base: record.base, tail: durableTail, boundaries: boundaries, source: sourceKey)
    }

    init(id: UInt64, record: StreamRecord, json: Bool, hotTailBytes: Int) {
        self.id = id
        self.record = record
        self.boundaries = MessageBoundaries(framed: json)
        self.hot = HotTail(capacity: hotTailBytes)
    }

    func isExpired(at now: Double) -> Bool {
        guard let expiry = record.lifetime.expiry(lastAccess: record.lastAccess) else { return false }
        return now >= expiry
    }

    /// What clients see: the committed end and closure.
    func info(_ incarnation: String) -> StreamInfo {
        StreamInfo(
            id: "\(incarnation)-\(id)", contentType: record.contentType, lifetime: record.lifetime,
            tail: StreamOffset(position: durableTail), closed: durableClosed,
            expiresAt: record.lifetime.expiry(lastAccess: record.lastAccess))
    }

    /// The stream as it will be once what is queued has committed (the answer to that writer).
    func pendingInfo(_ incarnation: String) -> StreamInfo {
        var info = info(incarnation)
        info.tail = StreamOffset(position: record.tail)
        info.closed = record.closed
        return info
    }

    /// Checks a read against the committed bytes and says where its bytes are.
    func planRead(from start: ReadStart, maxBytes: Int, incarnation: String) -> Result<ReadPlan, ProtocolError> {
        let from: UInt64
        switch start {
        case .beginning: from = 0
        case .now: from = durableTail
        case .offset(let offset):
            guard offset.position <= durableTail else {
                return .failure(ProtocolError(.badRequest, "offset is beyond the end of the stream"))
            }
            guard boundaries.isBoundary(offset.position, length: durableTail) else {
                return .failure(ProtocolError(.badRequest, "offset is not a message boundary"))
            }
            from = offset.position
        }
        let end = boundaries.readEnd(from: from, maxBytes: maxBytes, length: durableTail)
        let info = info(incarnation)
        if from == end {
            return .success(.ready(ReadResult(info: info, start: StreamOffset(position: from), end: StreamOffset(position: end), chunks: [])))
        }
        if let bytes = hot.bytes(from: from, to: end) {
            return .success(.ready(ReadResult(info: info, start: StreamOffset(position: from), end: StreamOffset(position: end), chunks: [bytes])))
        }
        return .success(.fromDisk(stream: id, segments: segments, info: info, from: from, to: end))
    }

    /// Takes back one append that will not commit (the newest not yet undone).
    mutating func undo(_ undo: AppendWrite.Undo) {
        let access = max(record.lastAccess, undo.record.lastAccess)
        let softDeleted = record.softDeleted
        record = undo.record
        record.lastAccess = access
        // A delete is its own job, undone (or not) on its own.
        record.softDeleted = softDeleted
        if let (key, slot) = undo.producer { producers[key] = slot }
    }

    /// Drops in-memory bytes, message ends and segments beyond the committed end.
    mutating func trimToDurable() {
        boundaries.truncate(to: durableTail)
        hot.truncate(to: durableTail)
        // A segment starting at the committed end holds only bytes that did not commit.
        segments.removeAll { $0 >= durableTail }
    }
}

/// A stream's metadata and producers as LMDB has them committed.
struct CommittedState {
    var record: StreamRecord
    var producers: [StreamKey: (serial: UInt64, state: ProducerState)]
}

/// An append's bytes as the stores frame them: a byte stream's body as it is (not copied); for
/// JSON, each message followed by a comma. `ends` are the stream positions where its messages end.
struct FramedAppend: Sendable {
    let bytes: ByteBuffer
    let ends: [UInt64]
    let start: UInt64
    var end: UInt64 { start + UInt64(bytes.readableBytes) }

    init(_ body: Body, messages: [Range<Int>], json: Bool, at start: UInt64) {
        self.start = start
        guard json else {
            if let range = messages.first, messages.count == 1 {
                bytes = body.bytes.getSlice(at: body.bytes.readerIndex + range.lowerBound, length: range.count)!
            } else {
                var joined = ByteBuffer()
                for range in messages { joined.writeImmutableBuffer(body.bytes.getSlice(at: body.bytes.readerIndex + range.lowerBound, length: range.count)!) }
                bytes = joined
            }
            ends = []
            return
        }
        var joined = ByteBuffer()
        joined.reserveCapacity(messages.reduce(0) { $0 + $1.count + 1 })
        var ends: [UInt64] = []
        ends.reserveCapacity(messages.count)
        for range in messages {
            joined.writeImmutableBuffer(body.bytes.getSlice(at: body.bytes.readerIndex + range.lowerBound, length: range.count)!)
            joined.writeInteger(UInt8(ascii: ","))
            ends.append(start + UInt64(joined.readableBytes))
        }
        bytes = joined
        self.ends = ends
    }
}
