import DurableStreams
import Foundation
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: reads and chunking")
struct ReadChunkingTests {
    // MARK: Byte streams

    @Test(arguments: StoreBackend.all) func readFromTheBeginning(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "hello world")
        let result = try h.read()
        #expect(result.text == "hello world")
        #expect(result.start == .zero)
        #expect(result.end == offset(11))
        #expect(result.upToDate)
        #expect(!result.reachedClosedEnd)
        #expect(result.byteCount == 11)
        #expect(result.info.tail == offset(11))
    }

    @Test(arguments: StoreBackend.all) func byteStreamsAreCutAtMaxBytes(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "hello world")
        let first = try h.read(maxBytes: 4)
        #expect(first.text == "hell")
        #expect(first.end == offset(4))
        #expect(!first.upToDate)
        let second = try h.read(from: .offset(first.end), maxBytes: 4)
        #expect(second.start == offset(4))
        #expect(second.text == "o wo")
        let third = try h.read(from: .offset(second.end), maxBytes: 4)
        #expect(third.text == "rld")
        #expect(third.end == offset(11))
        #expect(third.upToDate)
    }

    @Test(arguments: StoreBackend.all, [1, 2, 3, 5, 7, 11, 12, 100])
    func pagingThroughAByteStreamReturnsEveryByteOnce(_ backend: StoreBackend, maxBytes: Int) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/octet-stream")
        var expected: [UInt8] = []
        for index in 0..<10 {
            let chunk = (0..<(index + 1)).map { UInt8(truncatingIfNeeded: index * 31 + $0) }
            try h.appendBytes(chunk, type: "application/octet-stream")
            expected += chunk
        }
        var collected: [UInt8] = []
        var start = ReadStart.beginning
        var reads = 0
        while true {
            let result = try h.read(from: start, maxBytes: maxBytes)
            #expect(result.byteCount <= maxBytes)
            #expect(result.byteCount == Int(result.end.position - result.start.position))
            collected += result.bytes
            reads += 1
            if result.upToDate { break }
            #expect(result.byteCount > 0)
            start = .offset(result.end)
            if reads > 1000 { Issue.record("no progress"); break }
        }
        #expect(collected == expected)
    }

    @Test(arguments: StoreBackend.all) func zeroMaxBytesStillMakesProgress(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let result = try h.read(maxBytes: 0)
        #expect(result.byteCount >= 1)
        #expect(result.end > result.start)
    }

    @Test(arguments: StoreBackend.all) func readingAnEmptyStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let result = try h.read()
        #expect(result.chunks.isEmpty)
        #expect(result.start == .zero)
        #expect(result.end == .zero)
        #expect(result.upToDate)
    }

    @Test(arguments: StoreBackend.all) func readingAtTheTailIsEmptyAndUpToDate(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let result = try h.read(from: .offset(offset(3)))
        #expect(result.chunks.isEmpty)
        #expect(result.start == offset(3))
        #expect(result.end == offset(3))
        #expect(result.upToDate)
    }

    @Test(arguments: StoreBackend.all) func readFromAMidStreamOffset(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "first")
        let tail = try h.info().tail
        try h.append("second")
        #expect(try h.read(from: .offset(tail)).text == "second")
    }

    @Test(arguments: StoreBackend.all) func nowStartsAtTheTail(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "existing")
        let now = try h.read(from: .now)
        #expect(now.chunks.isEmpty)
        #expect(now.start == offset(8))
        #expect(now.end == offset(8))
        #expect(now.upToDate)
        try h.append(" new")
        #expect(try h.read(from: .offset(now.end)).text == " new")
    }

    @Test(arguments: StoreBackend.all) func minusOneAndNoOffsetAreTheSame(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "data")
        let explicit = try ReadStart(queryValue: "-1")
        let absent = try ReadStart(queryValue: nil)
        #expect(try h.read(from: explicit).bytes == h.read(from: absent).bytes)
    }

    @Test(arguments: StoreBackend.all) func offsetsBeyondTheTailAreABadRequest(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        #expect(h.readError(from: .offset(offset(4)))?.status == .badRequest)
        #expect(h.readError(from: .offset(offset(StreamOffset.maxPosition)))?.status == .badRequest)
    }

    @Test(arguments: StoreBackend.all) func readingAMissingStreamIsNotFound(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.readError("missing")?.status == .notFound)
        #expect(h.readError("missing", from: .now)?.status == .notFound)
        #expect(h.infoError("missing")?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func readsSeeEveryCompletedAppend(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        var expected = ""
        for index in 0..<20 {
            let piece = "<\(index)>"
            try h.append(piece)
            expected += piece
            #expect(try h.text() == expected)
        }
    }

    @Test(arguments: StoreBackend.all) func readChunksAreUnaffectedByLaterAppends(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        let before = try h.read()
        try h.append("def")
        #expect(before.text == "abc")
    }

    // MARK: JSON streams

    private static let messages = ["{\"a\":1}", "[1,2]", "\"xyz\"", "{\"long\":\"0123456789012345678901234567890123456789\"}", "7", "null"]

    private func jsonStream(_ backend: StoreBackend) throws -> (StoreHarness, ends: [UInt64]) {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json", body: "[" + Self.messages[0..<3].joined(separator: ",") + "]")
        try h.append("[" + Self.messages[3...].joined(separator: ", ") + "]", type: "application/json")
        var ends: [UInt64] = []
        var position: UInt64 = 0
        for message in Self.messages {
            position += UInt64(message.utf8.count + 1)
            ends.append(position)
        }
        return (h, ends)
    }

    @Test(arguments: StoreBackend.all) func jsonMessagesAreStoredWithCommaSeparators(_ backend: StoreBackend) throws {
        let (h, ends) = try jsonStream(backend)
        #expect(try h.text() == Self.messages.map { $0 + "," }.joined())
        #expect(try h.info().tail.position == ends.last)
    }

    @Test(arguments: StoreBackend.all) func aJSONReadReturnsWholeMessagesOnly(_ backend: StoreBackend) throws {
        let (h, _) = try jsonStream(backend)
        // Enough for the first message and part of the second: only the first comes back.
        let first = try h.read(maxBytes: Self.messages[0].utf8.count + 3)
        #expect(first.text == Self.messages[0] + ",")
        #expect(!first.upToDate)
    }

    @Test(arguments: StoreBackend.all) func aJSONReadReturnsAtLeastOneMessage(_ backend: StoreBackend) throws {
        let (h, ends) = try jsonStream(backend)
        let one = try h.read(maxBytes: 1)
        #expect(one.text == Self.messages[0] + ",")
        // The long message is larger than maxBytes, and still comes back whole.
        let long = try h.read(from: .offset(offset(ends[2])), maxBytes: 5)
        #expect(long.text == Self.messages[3] + ",")
        #expect(long.end == offset(ends[3]))
    }

    @Test(arguments: StoreBackend.all) func aJSONReadEndingExactlyOnABoundaryTakesEverythingUpToIt(_ backend: StoreBackend) throws {
        let (h, ends) = try jsonStream(backend)
        let result = try h.read(maxBytes: Int(ends[1]))
        #expect(result.end == offset(ends[1]))
        #expect(result.text == Self.messages[0] + "," + Self.messages[1] + ",")
    }

    @Test(arguments: StoreBackend.all, Array(0...80))
    func pagingThroughAJSONStreamNeverSplitsAMessage(_ backend: StoreBackend, maxBytes: Int) throws {
        let (h, ends) = try jsonStream(backend)
        let boundaries = Set(ends + [0])
        var collected = ""
        var start = ReadStart.beginning
        for _ in 0..<100 {
            let result = try h.read(from: start, maxBytes: maxBytes)
            #expect(boundaries.contains(result.end.position), "end \(result.end.position) is inside a message")
            #expect(result.end > result.start || result.upToDate)
            // Every chunk parses as a whole number of messages.
            if !result.chunks.isEmpty {
                let array = "[" + result.text.dropLast() + "]"
                let parsed = try JSONSerialization.jsonObject(with: Data(array.utf8), options: [.fragmentsAllowed])
                #expect(parsed is [Any])
            }
            collected += result.text
            if result.upToDate { break }
            start = .offset(result.end)
        }
        #expect(collected == Self.messages.map { $0 + "," }.joined())
    }

    @Test(arguments: StoreBackend.all) func aJSONReadMayNotStartInsideAMessage(_ backend: StoreBackend) throws {
        let (h, ends) = try jsonStream(backend)
        #expect(h.readError(from: .offset(offset(1)))?.status == .badRequest)
        #expect(h.readError(from: .offset(offset(ends[0] - 1)))?.status == .badRequest)
        #expect(h.readError(from: .offset(offset(ends[0] + 1)))?.status == .badRequest)
        #expect(try h.read(from: .offset(offset(ends[0]))).text.hasPrefix(Self.messages[1]))
    }

    @Test(arguments: StoreBackend.all) func anEmptyJSONStreamReadsNothing(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json", body: "[]")
        let result = try h.read()
        #expect(result.chunks.isEmpty)
        #expect(result.upToDate)
        let now = try h.read(from: .now)
        #expect(now.chunks.isEmpty)
    }
}
