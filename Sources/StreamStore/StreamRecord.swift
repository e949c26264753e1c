import DurableStreams
import NIOCore

/// What the file store keeps in LMDB for one stream: everything but its bytes and its producers.
///
/// `tail` is the committed end: segment bytes beyond it were never acknowledged and are cut at
/// start-up. It is written in the same LMDB transaction as the producer states an append
/// changes, which is what makes data and producer state commit as one.
struct StreamRecord: Sendable, Equatable {
    var name: String
    var contentType: ContentType
    var lifetime: StreamLifetime
    var lastAccess: Double
    var tail: UInt64
    /// How many message ends the stream's index holds (JSON streams).
    var messageCount: UInt64
    var closed: Bool
    var closedBy: ProducerClaim?
    var lastSeq: String?
    /// The serial the next new producer of this stream gets (its LMDB key).
    var nextProducerSerial: UInt64
    /// Where the stream's own bytes start: its fork point, 0 unless it is a fork.
    var base: UInt64 = 0
    /// For a fork: how it was made, and its source's stream id.
    var fork: ForkOrigin?
    var sourceID: UInt64?
    /// Deleted (or expired) while forks still use its data.
    var softDeleted = false

    /// Version 2 added the fork fields; version 1 records read as streams that are not forks.
    private static let version: UInt8 = 2

    func encoded() -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.version)
        buffer.writeLengthPrefixed(name)
        buffer.writeLengthPrefixed(contentType.headerValue)
        switch lifetime {
        case .unlimited:
            buffer.writeInteger(UInt8(0))
        case .ttl(let seconds):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(seconds)
        case .expiresAt(let seconds, let text):
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(seconds.bitPattern)
            buffer.writeLengthPrefixed(text)
        }
        buffer.writeInteger(lastAccess.bitPattern)
        buffer.writeInteger(tail)
        buffer.writeInteger(messageCount)
        buffer.writeInteger(UInt8(closed ? 1 : 0))
        if let closedBy {
            buffer.writeInteger(UInt8(1))
            buffer.writeLengthPrefixed(closedBy.id)
            buffer.writeInteger(closedBy.epoch)
            buffer.writeInteger(closedBy.seq)
        } else {
            buffer.writeInteger(UInt8(0))
        }
        if let lastSeq {
            buffer.writeInteger(UInt8(1))
            buffer.writeLengthPrefixed(lastSeq)
        } else {
            buffer.writeInteger(UInt8(0))
        }
        buffer.writeInteger(nextProducerSerial)
        buffer.writeInteger(base)
        buffer.writeInteger(UInt8(softDeleted ? 1 : 0))
        if let fork, let sourceID {
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(sourceID)
            buffer.writeLengthPrefixed(fork.source)
            buffer.writeInteger(fork.anchor.position)
            buffer.writeInteger(fork.subOffset)
        } else {
            buffer.writeInteger(UInt8(0))
        }
        return Array(buffer.readableBytesView)
    }

    /// `nil` when the bytes are not a record this version wrote.
    init?(decoding bytes: [UInt8]) {
        var buffer = ByteBuffer(bytes: bytes)
        guard let version = buffer.readInteger(as: UInt8.self), version == 1 || version == Self.version,
            let name = buffer.readLengthPrefixed(),
            let typeText = buffer.readLengthPrefixed(), let contentType = ContentType(typeText),
            let kind = buffer.readInteger(as: UInt8.self)
        else { return nil }
        switch kind {
        case 0:
            lifetime = .unlimited
        case 1:
            guard let seconds = buffer.readInteger(as: UInt64.self) else { return nil }
            lifetime = .ttl(seconds: seconds)
        case 2:
            guard let bits = buffer.readInteger(as: UInt64.self), let text = buffer.readLengthPrefixed() else { return nil }
            lifetime = .expiresAt(seconds: Double(bitPattern: bits), text: text)
        default:
            return nil
        }
        guard let access = buffer.readInteger(as: UInt64.self), let tail = buffer.readInteger(as: UInt64.self),
            let messageCount = buffer.readInteger(as: UInt64.self), let closed = buffer.readInteger(as: UInt8.self),
            let hasCloser = buffer.readInteger(as: UInt8.self)
        else { return nil }
        if hasCloser == 1 {
            guard let id = buffer.readLengthPrefixed(), let epoch = buffer.readInteger(as: UInt64.self),
                let seq = buffer.readInteger(as: UInt64.self)
            else { return nil }
            closedBy = ProducerClaim(id: id, epoch: epoch, seq: seq)
        } else {
            closedBy = nil
        }
        guard let hasSeq = buffer.readInteger(as: UInt8.self) else { return nil }
        if hasSeq == 1 {
            guard let seq = buffer.readLengthPrefixed() else { return nil }
            lastSeq = seq
        } else {
            lastSeq = nil
        }
        guard let serial = buffer.readInteger(as: UInt64.self) else { return nil }
        if version >= 2 {
            guard let base = buffer.readInteger(as: UInt64.self), let soft = buffer.readInteger(as: UInt8.self),
                let hasFork = buffer.readInteger(as: UInt8.self)
            else { return nil }
            self.base = base
            self.softDeleted = soft == 1
            if hasFork == 1 {
                guard let sourceID = buffer.readInteger(as: UInt64.self), let source = buffer.readLengthPrefixed(),
                    let anchor = buffer.readInteger(as: UInt64.self), anchor <= StreamOffset.maxPosition,
                    let subOffset = buffer.readInteger(as: UInt64.self)
                else { return nil }
                self.sourceID = sourceID
                self.fork = ForkOrigin(source: source, anchor: StreamOffset(position: anchor), subOffset: subOffset)
            }
        }
        self.name = name
        self.contentType = contentType
        self.lastAccess = Double(bitPattern: access)
        self.tail = tail
        self.messageCount = messageCount
        self.closed = closed == 1
        self.nextProducerSerial = serial
    }

    init(name: String, contentType: ContentType, lifetime: StreamLifetime, lastAccess: Double, tail: UInt64,
         messageCount: UInt64, closed: Bool, closedBy: ProducerClaim?, lastSeq: String?, nextProducerSerial: UInt64) {
        self.name = name
        self.contentType = contentType
        self.lifetime = lifetime
        self.lastAccess = lastAccess
        self.tail = tail
        self.messageCount = messageCount
        self.closed = closed
        self.closedBy = closedBy
        self.lastSeq = lastSeq
        self.nextProducerSerial = nextProducerSerial
    }
}

/// One producer's state as LMDB keeps it, under the key `stream id + serial`: producer ids are
/// client-chosen and may be longer than an LMDB key, so the id travels in the value.
struct ProducerRecord: Sendable, Equatable {
    var id: String
    var state: ProducerState

    func encoded() -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeLengthPrefixed(id)
        buffer.writeInteger(state.epoch)
        buffer.writeInteger(state.lastSeq)
        return Array(buffer.readableBytesView)
    }

    init(id: String, state: ProducerState) {
        self.id = id
        self.state = state
    }

    init?(decoding bytes: [UInt8]) {
        var buffer = ByteBuffer(bytes: bytes)
        guard let id = buffer.readLengthPrefixed(), let epoch = buffer.readInteger(as: UInt64.self),
            let seq = buffer.readInteger(as: UInt64.self)
        else { return nil }
        self.init(id: id, state: ProducerState(epoch: epoch, lastSeq: seq))
    }
}

/// LMDB keys: big-endian so that a stream's producers sort together under its id.
enum RecordKey {
    static func stream(_ id: UInt64) -> [UInt8] { bigEndian(id) }
    static func producer(stream: UInt64, serial: UInt64) -> [UInt8] { bigEndian(stream) + bigEndian(serial) }
    static let nextStreamID: [UInt8] = Array("next_stream_id".utf8)

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    static func decode(_ bytes: some Collection<UInt8>) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension ByteBuffer {
    fileprivate mutating func writeLengthPrefixed(_ text: String) {
        writeInteger(UInt32(truncatingIfNeeded: text.utf8.count))
        writeString(text)
    }

    fileprivate mutating func readLengthPrefixed() -> String? {
        guard let length = readInteger(as: UInt32.self) else { return nil }
        return readString(length: Int(length))
    }
}
