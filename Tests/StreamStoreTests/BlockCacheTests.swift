import NIOCore
import Testing
@testable import StreamStore

@Suite("BlockCache: whole blocks of history, least recently used out")
struct BlockCacheTests {
    private let size = Int(BlockCache.blockSize)

    private func block(_ fill: UInt8) -> ByteBuffer { ByteBuffer(repeating: fill, count: size) }

    @Test func answersOnlyWhenEveryBlockOfTheRangeIsHeld() {
        let cache = BlockCache(capacity: 10 * size)
        cache.insert(1, index: 0, block(0xA))
        cache.insert(1, index: 2, block(0xC))
        let inFirst = cache.bytes(1, from: 10, to: 20)
        #expect(inFirst?.flatMap { Array($0.readableBytesView) } == Array(repeating: 0xA, count: 10))
        #expect(cache.bytes(1, from: UInt64(size) - 5, to: UInt64(size) + 5) == nil)  // block 1 missing
        #expect(cache.bytes(2, from: 0, to: 10) == nil)  // another stream
        cache.insert(1, index: 1, block(0xB))
        let across = cache.bytes(1, from: UInt64(size) - 2, to: UInt64(2 * size) + 2)
        #expect(across?.flatMap { Array($0.readableBytesView) } == [0xA, 0xA] + Array(repeating: 0xB, count: size) + [0xC, 0xC])
    }

    @Test func keepsOnlyWholeBlocks() {
        let cache = BlockCache(capacity: 10 * size)
        cache.insert(1, index: 0, ByteBuffer(repeating: 1, count: size - 1))
        #expect(cache.byteCount == 0)
    }

    @Test func evictsTheLeastRecentlyUsedBeyondItsBudget() {
        let cache = BlockCache(capacity: 8 * size)
        for index in 0..<8 { cache.insert(1, index: UInt64(index), block(UInt8(index))) }
        _ = cache.bytes(1, from: 0, to: 1)  // block 0 is now the most recently used
        cache.insert(1, index: 8, block(8))
        #expect(cache.byteCount <= 8 * size)
        #expect(cache.bytes(1, from: 0, to: 1) != nil)
        #expect(cache.bytes(1, from: UInt64(size), to: UInt64(size) + 1) == nil)  // block 1 was the oldest
        #expect(cache.bytes(1, from: UInt64(8 * size), to: UInt64(8 * size) + 1) != nil)
    }

    @Test func forgetsADeletedStream() {
        let cache = BlockCache(capacity: 8 * size)
        cache.insert(1, index: 0, block(1))
        cache.insert(2, index: 0, block(2))
        cache.removeAll(stream: 1)
        #expect(cache.byteCount == size)
        #expect(cache.bytes(1, from: 0, to: 1) == nil)
        #expect(cache.bytes(2, from: 0, to: 1) != nil)
    }
}
