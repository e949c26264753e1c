import NIOCore

/// The bytes of one stream in memory, as a list of segments.
///
/// Sealed segments never change, so reads hand out zero-copy slices of them. The open segment
/// is still written to; a slice of it would force a copy-on-write of the whole segment on the
/// next append, so reads copy just the bytes they need from it instead.
struct MemoryLog {
    /// A segment is sealed once it holds this many bytes.
    static let segmentSize = 1 << 20

    private var sealed: [ByteBuffer] = []
    /// Stream position of the first byte of each sealed segment.
    private var sealedStarts: [UInt64] = []
    private var open = ByteBuffer()
    private var openStart: UInt64 = 0
    /// For JSON streams, where each message ends.
    private var boundaries: MessageBoundaries

    /// `base`: where the log's first byte sits in the stream (a fork's own bytes start at its
    /// fork point; everything below is its source's).
    init(framed: Bool, base: UInt64 = 0) {
        boundaries = MessageBoundaries(framed: framed)
        openStart = base
    }

    /// The message ends, for reads that cross into this log from a fork.
    var messageBoundaries: MessageBoundaries { boundaries }

    /// For JSON streams: the end position of every message, ascending. `nil` for byte streams,
    /// where any position is a valid chunk boundary.
    var messageEnds: [UInt64]? { boundaries.ends }

    var length: UInt64 { openStart + UInt64(open.readableBytes) }

    /// Appends `body[range]` as one record, followed by `suffix` (the JSON separator).
    mutating func append(_ body: ByteBuffer, _ range: Range<Int>, suffix: UInt8?) {
        let count = range.count + (suffix == nil ? 0 : 1)
        if open.readableBytes + count > Self.segmentSize, open.readableBytes > 0 {
            seal()
        }
        if count >= Self.segmentSize, suffix == nil {
            // A large record becomes a sealed segment of its own, without copying it.
            sealed.append(body.getSlice(at: body.readerIndex + range.lowerBound, length: range.count)!)
            sealedStarts.append(openStart)
            openStart += UInt64(range.count)
        } else {
            body.withUnsafeReadableBytes { raw in
                _ = open.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range]))
            }
            if let suffix { open.writeInteger(suffix) }
            if open.readableBytes >= Self.segmentSize { seal() }
        }
        let end = length
        boundaries.append(end)
    }

    private mutating func seal() {
        sealed.append(open)
        sealedStarts.append(openStart)
        openStart += UInt64(open.readableBytes)
        open = ByteBuffer()
    }

    /// Whether `position` is somewhere a read may start.
    func isBoundary(_ position: UInt64) -> Bool {
        boundaries.isBoundary(position, length: length)
    }

    /// Where a read from `start` ends: `maxBytes` later, moved back to a message boundary for
    /// framed logs but never short of one whole message.
    func readEnd(from start: UInt64, maxBytes: Int) -> UInt64 {
        boundaries.readEnd(from: start, maxBytes: maxBytes, length: length)
    }

    /// The bytes of `[start, end)`.
    func bytes(from start: UInt64, to end: UInt64) -> [ByteBuffer] {
        guard start < end else { return [] }
        var chunks: [ByteBuffer] = []
        var position = start
        if position < openStart {
            let search = MessageBoundaries.search(sealedStarts, position)
            var index = search.found ? search.index : search.index - 1
            while position < min(end, openStart) {
                let segment = sealed[index]
                let segmentStart = sealedStarts[index]
                let from = Int(position - segmentStart)
                let upTo = Int(min(end, segmentStart + UInt64(segment.readableBytes)) - segmentStart)
                chunks.append(segment.getSlice(at: segment.readerIndex + from, length: upTo - from)!)
                position = segmentStart + UInt64(upTo)
                index += 1
            }
        }
        if position < end {
            let from = Int(position - openStart)
            var copy = ByteBuffer()
            copy.reserveCapacity(Int(end - position))
            open.withUnsafeReadableBytes { raw in
                _ = copy.writeBytes(UnsafeRawBufferPointer(rebasing: raw[from..<(from + Int(end - position))]))
            }
            chunks.append(copy)
        }
        return chunks
    }
}
