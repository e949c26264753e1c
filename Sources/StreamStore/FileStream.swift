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
    var hot: HotTail
    var waiters = StreamWaiters()

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

    /// Forgets everything accepted after the committed state `state` (a failed commit).
    mutating func rollBack(to state: CommittedState) {
        let access = max(record.lastAccess, state.record.lastAccess)
        record = state.record
        record.lastAccess = access
        producers = state.producers
        durableTail = state.record.tail
        durableClosed = state.record.closed
        boundaries.truncate(to: durableTail)
        hot.truncate(to: durableTail)
        segments.removeAll { $0 > durableTail }
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
