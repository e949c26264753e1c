import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

/// A byte that depends on its stream position, so a read from the wrong place is caught.
private func patternByte(_ position: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: position ^ (position >> 8) ^ (position >> 16) &* 7)
}

private func pattern(from start: Int, count: Int) -> [UInt8] {
    (start..<(start + count)).map(patternByte)
}

private func joined(_ chunks: [ByteBuffer]) -> [UInt8] {
    var out: [UInt8] = []
    for chunk in chunks { out += chunk.readableBytesView }
    return out
}

/// Builds a byte log from records of the given sizes, returning it and its expected content.
private func byteLog(recordSizes: [Int]) -> (MemoryLog, [UInt8]) {
    var log = MemoryLog(framed: false)
    var expected: [UInt8] = []
    for size in recordSizes {
        let record = pattern(from: expected.count, count: size)
        log.append(ByteBuffer(bytes: record), 0..<size, suffix: nil)
        expected += record
    }
    return (log, expected)
}

@Suite("MemoryLog segments")
struct MemoryLogTests {
    static let segment = MemoryLog.segmentSize

    @Test func segmentSizeIsOneMiB() {
        #expect(MemoryLog.segmentSize == 1_048_576)
    }

    @Test func appendsOnlyTheGivenRange() {
        var log = MemoryLog(framed: false)
        log.append(ByteBuffer(string: "xxhelloxx"), 2..<7, suffix: nil)
        #expect(log.length == 5)
        #expect(joined(log.bytes(from: 0, to: 5)) == Array("hello".utf8))
    }

    @Test func appendsRespectTheBuffersReaderIndex() {
        var buffer = ByteBuffer(string: "skipdata")
        buffer.moveReaderIndex(forwardBy: 4)
        var log = MemoryLog(framed: false)
        log.append(buffer, 0..<4, suffix: nil)
        #expect(joined(log.bytes(from: 0, to: 4)) == Array("data".utf8))
        // The same for a record large enough to be kept without copying.
        var large = ByteBuffer(bytes: [0xEE, 0xEE] + pattern(from: 0, count: Self.segment))
        large.moveReaderIndex(forwardBy: 2)
        var bigLog = MemoryLog(framed: false)
        bigLog.append(large, 0..<Self.segment, suffix: nil)
        #expect(joined(bigLog.bytes(from: 0, to: 16)) == pattern(from: 0, count: 16))
    }

    @Test func emptyRangeReadsNothing() {
        let (log, _) = byteLog(recordSizes: [10])
        #expect(log.bytes(from: 3, to: 3).isEmpty)
        #expect(log.bytes(from: 10, to: 10).isEmpty)
    }

    /// Small records that fill several segments: 100 KiB records, so a segment is sealed every
    /// ten records, short of the 1 MiB mark.
    @Test func readsAcrossSealedSegmentsOfSmallRecords() {
        let (log, expected) = byteLog(recordSizes: Array(repeating: 100 * 1024, count: 25))
        #expect(log.length == UInt64(expected.count))
        #expect(joined(log.bytes(from: 0, to: log.length)) == expected)
        let seal = 10 * 100 * 1024
        for start in [0, 1, seal - 1, seal, seal + 1, 2 * seal - 7, 2 * seal, 2 * seal + 1] {
            for end in [start + 1, seal + 1, 2 * seal, 2 * seal + 3, expected.count] where end > start && end <= expected.count {
                let bytes = joined(log.bytes(from: UInt64(start), to: UInt64(end)))
                #expect(bytes == Array(expected[start..<end]), "[\(start), \(end))")
            }
        }
    }

    @Test func aRecordThatFillsTheSegmentExactlySealsIt() {
        let (log, expected) = byteLog(recordSizes: [Self.segment - 10, 10, 5, 3])
        #expect(log.length == UInt64(expected.count))
        for (start, end) in [(0, Self.segment), (Self.segment - 1, Self.segment + 1), (Self.segment, Self.segment + 8),
                             (Self.segment - 10, expected.count), (0, expected.count)] {
            #expect(joined(log.bytes(from: UInt64(start), to: UInt64(end))) == Array(expected[start..<end]), "[\(start), \(end))")
        }
    }

    @Test func largeRecordsBecomeTheirOwnSegments() {
        let sizes = [100, Self.segment, 7, Self.segment + Self.segment / 2, 1, Self.segment * 2, 13]
        let (log, expected) = byteLog(recordSizes: sizes)
        #expect(log.length == UInt64(expected.count))
        #expect(joined(log.bytes(from: 0, to: log.length)) == expected)
        var boundaries: [Int] = [0]
        for size in sizes { boundaries.append(boundaries.last! + size) }
        for boundary in boundaries {
            for start in [boundary - 1, boundary, boundary + 1] where start >= 0 && start < expected.count {
                for end in [start + 1, min(expected.count, start + 5000)] where end > start {
                    let bytes = joined(log.bytes(from: UInt64(start), to: UInt64(end)))
                    #expect(bytes == Array(expected[start..<end]), "[\(start), \(end))")
                }
            }
        }
    }

    @Test func aReadSpanningManySegmentsReturnsOneChunkPerSegmentPiece() {
        let (log, expected) = byteLog(recordSizes: [Self.segment, Self.segment, Self.segment, 50])
        let chunks = log.bytes(from: 10, to: UInt64(expected.count - 10))
        #expect(chunks.count == 4)
        #expect(joined(chunks) == Array(expected[10..<(expected.count - 10)]))
    }

    @Test func recordsAppendedAfterAReadDoNotChangeIt() {
        var (log, expected) = byteLog(recordSizes: [Self.segment - 100, 50])
        let before = log.bytes(from: 0, to: log.length)
        let more = pattern(from: 999, count: 500)
        log.append(ByteBuffer(bytes: more), 0..<more.count, suffix: nil)
        #expect(joined(before) == expected)
        expected += more
        #expect(joined(log.bytes(from: 0, to: log.length)) == expected)
    }

    // MARK: Framed logs

    @Test func framedLogsRecordMessageEnds() {
        var log = MemoryLog(framed: true)
        let body = ByteBuffer(string: "[1,22,333]")
        log.append(body, 1..<2, suffix: UInt8(ascii: ","))
        log.append(body, 3..<5, suffix: UInt8(ascii: ","))
        log.append(body, 6..<9, suffix: UInt8(ascii: ","))
        #expect(log.messageEnds == [2, 5, 9])
        #expect(String(decoding: joined(log.bytes(from: 0, to: log.length)), as: UTF8.self) == "1,22,333,")
        #expect(MemoryLog(framed: false).messageEnds == nil)
    }

    @Test func boundariesOfFramedAndByteLogs() {
        var framed = MemoryLog(framed: true)
        let body = ByteBuffer(string: "abcdef")
        framed.append(body, 0..<2, suffix: UInt8(ascii: ","))
        framed.append(body, 2..<6, suffix: UInt8(ascii: ","))
        for position: UInt64 in 0...9 {
            #expect(framed.isBoundary(position) == [0, 3, 8].contains(position), "\(position)")
        }
        let (bytes, _) = byteLog(recordSizes: [4])
        for position: UInt64 in 0...4 { #expect(bytes.isBoundary(position)) }
        #expect(!bytes.isBoundary(5))
    }

    @Test func readEndOfAByteLogIsCappedAtTheTail() {
        let (log, _) = byteLog(recordSizes: [10])
        #expect(log.readEnd(from: 0, maxBytes: 4) == 4)
        #expect(log.readEnd(from: 8, maxBytes: 4) == 10)
        #expect(log.readEnd(from: 10, maxBytes: 4) == 10)
        #expect(log.readEnd(from: 0, maxBytes: 0) == 1)
    }

    @Test func readEndOfAFramedLogStopsOnMessageBoundaries() {
        var log = MemoryLog(framed: true)
        let body = ByteBuffer(string: String(repeating: "x", count: 100))
        for size in [3, 10, 2, 50] { log.append(body, 0..<size, suffix: UInt8(ascii: ",")) }
        // Ends: 4, 15, 18, 69.
        #expect(log.messageEnds == [4, 15, 18, 69])
        #expect(log.readEnd(from: 0, maxBytes: 1) == 4)
        #expect(log.readEnd(from: 0, maxBytes: 4) == 4)
        #expect(log.readEnd(from: 0, maxBytes: 14) == 4)
        #expect(log.readEnd(from: 0, maxBytes: 15) == 15)
        #expect(log.readEnd(from: 0, maxBytes: 17) == 15)
        #expect(log.readEnd(from: 4, maxBytes: 1) == 15)
        #expect(log.readEnd(from: 18, maxBytes: 10) == 69)
        #expect(log.readEnd(from: 0, maxBytes: 1000) == 69)
    }

    @Test func framedMessagesAcrossSegmentBoundaries() {
        var log = MemoryLog(framed: true)
        var expected: [UInt8] = []
        var ends: [UInt64] = []
        // Messages of 300 KiB, a 2 MiB one, then small ones: never zero-copy, always with a suffix.
        for size in [300 * 1024, 300 * 1024, 300 * 1024, 300 * 1024, 2 * Self.segment, 10, 20] {
            let record = pattern(from: expected.count, count: size)
            log.append(ByteBuffer(bytes: record), 0..<size, suffix: UInt8(ascii: ","))
            expected += record + [UInt8(ascii: ",")]
            ends.append(UInt64(expected.count))
        }
        #expect(log.messageEnds == ends)
        #expect(log.length == UInt64(expected.count))
        #expect(joined(log.bytes(from: 0, to: log.length)) == expected)
        var start: UInt64 = 0
        for end in ends {
            #expect(joined(log.bytes(from: start, to: end)) == Array(expected[Int(start)..<Int(end)]))
            #expect(log.readEnd(from: start, maxBytes: 1) == end)
            start = end
        }
    }
}

@Suite("MemoryStore reads across the segment boundary")
struct SegmentBoundaryReadTests {
    static let segment = MemoryLog.segmentSize

    @Test func readsAcrossTheBoundaryReturnTheExactBytes() throws {
        let h = try StoreHarness()
        try h.create(type: "application/octet-stream")
        var expected: [UInt8] = []
        for size in [700 * 1024, 700 * 1024, Self.segment + 3, 12, 900 * 1024] {
            let record = pattern(from: expected.count, count: size)
            try h.appendBytes(record, type: "application/octet-stream")
            expected += record
        }
        #expect(try h.contents() == expected)
        #expect(try h.info().tail == offset(UInt64(expected.count)))
        // Page through in odd-sized reads that straddle every boundary.
        var collected: [UInt8] = []
        var start = ReadStart.beginning
        while true {
            let result = try h.read(from: start, maxBytes: 333_333)
            let from = Int(result.start.position)
            #expect(result.bytes == Array(expected[from..<(from + result.byteCount)]))
            collected += result.bytes
            if result.upToDate { break }
            start = .offset(result.end)
        }
        #expect(collected == expected)
    }

    @Test func readsStartingJustBeforeAndAfterTheBoundary() throws {
        let h = try StoreHarness()
        try h.create(type: "application/octet-stream")
        let first = pattern(from: 0, count: 700 * 1024)
        let second = pattern(from: first.count, count: 700 * 1024)
        try h.appendBytes(first, type: "application/octet-stream")
        try h.appendBytes(second, type: "application/octet-stream")
        let expected = first + second
        let boundary = first.count
        for start in [boundary - 2, boundary - 1, boundary, boundary + 1] {
            let result = try h.read(from: .offset(offset(UInt64(start))), maxBytes: 4)
            #expect(result.bytes == Array(expected[start..<(start + 4)]), "from \(start)")
        }
    }

    @Test func jsonMessagesAcrossTheBoundaryAreNeverSplit() throws {
        let h = try StoreHarness()
        try h.create(type: "application/json")
        let message = "\"" + String(repeating: "a", count: 400 * 1024) + "\""
        for _ in 0..<5 { try h.append(message, type: "application/json") }
        var start = ReadStart.beginning
        var count = 0
        while true {
            let result = try h.read(from: start, maxBytes: 500 * 1024)
            #expect(result.text == message + ",")
            count += 1
            if result.upToDate { break }
            start = .offset(result.end)
        }
        #expect(count == 5)
    }
}
