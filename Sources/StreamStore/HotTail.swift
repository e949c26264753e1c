import NIOCore

/// The most recent bytes of a stream, kept in memory so that live readers, who read what was
/// just appended, are answered without a trip to disk. At most about twice `capacity` bytes.
struct HotTail {
    /// Stream position of the first byte held.
    private(set) var start: UInt64 = 0
    private var buffer = ByteBuffer()
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var end: UInt64 { start + UInt64(buffer.readableBytes) }
    var byteCount: Int { buffer.readableBytes }

    /// Adds bytes that the stream now holds at `position`.
    mutating func append(_ bytes: ByteBuffer, at position: UInt64) {
        guard capacity > 0 else { return }
        if position != end || buffer.readableBytes == 0 {
            buffer.clear()
            start = position
        }
        var bytes = bytes
        buffer.writeBuffer(&bytes)
        if buffer.readableBytes > 2 * capacity {
            // Keep the newest `capacity` bytes, copied so the old storage is released.
            let drop = buffer.readableBytes - capacity
            var kept = ByteBuffer()
            kept.reserveCapacity(capacity)
            kept.writeImmutableBuffer(buffer.getSlice(at: buffer.readerIndex + drop, length: capacity)!)
            buffer = kept
            start += UInt64(drop)
        }
    }

    /// Forgets bytes at and beyond `position` (appends that did not commit).
    mutating func truncate(to position: UInt64) {
        guard position < end else { return }
        guard position > start else { return drop() }
        buffer.moveWriterIndex(to: buffer.readerIndex + Int(position - start))
    }

    mutating func drop() {
        buffer = ByteBuffer()
        start = 0
    }

    /// A copy of `[from, to)` when all of it is held. Copied because a slice would share the
    /// storage the next append writes into.
    func bytes(from: UInt64, to: UInt64) -> ByteBuffer? {
        guard from >= start, to <= end, from <= to, buffer.readableBytes > 0 else { return nil }
        var copy = ByteBuffer()
        copy.reserveCapacity(Int(to - from))
        copy.writeImmutableBuffer(buffer.getSlice(at: buffer.readerIndex + Int(from - start), length: Int(to - from))!)
        return copy
    }
}
