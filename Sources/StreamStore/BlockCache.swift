import NIOConcurrencyHelpers
import NIOCore

/// Recently read stretches of stream bytes from segment files, in aligned blocks, so that
/// catch-up readers of the same history (a new client replaying from the start, a cache
/// filling) are answered from memory without a trip through the I/O threads.
///
/// Only whole blocks below a stream's committed end are kept: those bytes never change.
/// Blocks are looked up on the event loop (a dictionary under a lock, no I/O) and filled on the
/// I/O threads. The least recently used go when the cache outgrows its budget.
final class BlockCache: @unchecked Sendable {
    static let blockSize: UInt64 = 64 << 10

    struct Key: Hashable {
        var stream: UInt64
        var index: UInt64
    }

    private struct Entry {
        var bytes: ByteBuffer
        var lastUse: UInt64
    }

    private let lock = NIOLock()
    private var entries: [Key: Entry] = [:]
    private var size = 0
    private var clock: UInt64 = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var byteCount: Int { lock.withLock { size } }

    /// The blocks covering `[from, to)` of a stream, if all are cached, as slices of `[from, to)`.
    func bytes(_ stream: UInt64, from: UInt64, to: UInt64) -> [ByteBuffer]? {
        guard capacity > 0, from < to else { return nil }
        return lock.withLock {
            var parts: [ByteBuffer] = []
            var position = from
            while position < to {
                let index = position / Self.blockSize
                guard var entry = entries[Key(stream: stream, index: index)] else { return nil }
                clock += 1
                entry.lastUse = clock
                entries[Key(stream: stream, index: index)] = entry
                let blockStart = index * Self.blockSize
                let upTo = min(to, blockStart + UInt64(entry.bytes.readableBytes))
                guard upTo > position else { return nil }
                parts.append(entry.bytes.getSlice(at: entry.bytes.readerIndex + Int(position - blockStart), length: Int(upTo - position))!)
                position = upTo
            }
            return parts
        }
    }

    /// Keeps a whole block (exactly `blockSize` bytes, all committed).
    func insert(_ stream: UInt64, index: UInt64, _ bytes: ByteBuffer) {
        guard capacity > 0, bytes.readableBytes == Int(Self.blockSize) else { return }
        lock.withLock {
            clock += 1
            let key = Key(stream: stream, index: index)
            if let old = entries[key] { size -= old.bytes.readableBytes }
            entries[key] = Entry(bytes: bytes, lastUse: clock)
            size += bytes.readableBytes
            guard size > capacity else { return }
            // Evict down to seven eighths in one pass, so the sort is paid rarely.
            for (key, entry) in entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
                entries[key] = nil
                size -= entry.bytes.readableBytes
                if size <= capacity / 8 * 7 { break }
            }
        }
    }

    /// Forgets a deleted stream's blocks.
    func removeAll(stream: UInt64) {
        lock.withLock {
            for (key, entry) in entries where key.stream == stream {
                entries[key] = nil
                size -= entry.bytes.readableBytes
            }
        }
    }
}
