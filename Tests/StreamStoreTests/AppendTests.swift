import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: append (POST)")
struct AppendTests {
    @Test(arguments: StoreBackend.all) func appendsAreConcatenatedAndTheTailAdvances(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        let first = try h.append("chunk1")
        #expect(first.tail == offset(6))
        #expect(!first.duplicate)
        #expect(!first.closed)
        #expect(first.producer == nil)
        let second = try h.append("chunk2")
        #expect(second.tail == offset(12))
        #expect(second.tail > first.tail)
        #expect(second.tail.description > first.tail.description)
        #expect(try h.text() == "chunk1chunk2")
        #expect(try h.info().tail == offset(12))
    }

    @Test(arguments: StoreBackend.all) func appendsAreByteExact(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/octet-stream")
        let all = (0...255).map { UInt8($0) }
        try h.appendBytes(all, type: "application/octet-stream")
        try h.appendBytes([0x00, 0xFF, 0x00], type: "application/octet-stream")
        #expect(try h.contents() == all + [0x00, 0xFF, 0x00])
    }

    @Test(arguments: StoreBackend.all) func onlyTheReadableBytesOfTheBodyAreStored(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json", body: "[]")
        try h.create("bytes", type: "application/octet-stream")
        // A body that is a view into a larger buffer, as an HTTP decoder may hand over.
        var json = ByteBuffer(string: "HEADER[{\"a\":1},2]")
        json.moveReaderIndex(forwardBy: 6)
        let jsonBody = Body.framing(json, as: ContentType("application/json"), allowEmptyArray: false)
        _ = try h.store.append("s", AppendCommand(contentType: ContentType("application/json"), seq: nil, closed: false,
                                                 producer: nil, body: jsonBody), on: h.loop).wait()
        #expect(try h.text() == "{\"a\":1},2,")
        var large = ByteBuffer(bytes: Array(repeating: 0xAA, count: 7) + Array(repeating: 0x55, count: MemoryLog.segmentSize))
        large.moveReaderIndex(forwardBy: 7)
        let bytesBody = Body.framing(large, as: ContentType("application/octet-stream"), allowEmptyArray: false)
        _ = try h.store.append("bytes", AppendCommand(contentType: ContentType("application/octet-stream"), seq: nil,
                                                     closed: false, producer: nil, body: bytesBody), on: h.loop).wait()
        let stored = try h.contents("bytes")
        #expect(stored.count == MemoryLog.segmentSize)
        #expect(stored.allSatisfy { $0 == 0x55 })
    }

    @Test(arguments: StoreBackend.all) func appendToAMissingStreamIsNotFound(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.appendError("missing", "x")?.status == .notFound)
        #expect(h.appendError("missing", "x", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))?.status == .notFound)
        #expect(h.appendError("missing", "", type: nil, closed: true)?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func contentTypeMatchingIgnoresCaseAndParameters(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain")
        try h.append("a", type: "TEXT/PLAIN")
        try h.append("b", type: "text/plain; charset=utf-8")
        #expect(try h.text() == "ab")
    }

    @Test(arguments: StoreBackend.all) func mismatchedContentTypeConflicts(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "text/plain")
        let error = h.appendError("{}", type: "application/json")
        #expect(error?.status == .conflict)
        #expect(error?.header(HeaderName.closed) == nil)
        #expect(try h.info().tail == .zero)
    }

    @Test(arguments: StoreBackend.all) func jsonAppendsAreSplitIntoMessages(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        try h.append("{\"event\": \"created\"}", type: "application/json")
        try h.append("[{\"event\":\"a\"}, {\"event\":\"b\"}]", type: "application/json")
        try h.append("[[1,2],[3,4]]", type: "application/json")
        try h.append("[[[1,2,3]]]", type: "application/json; charset=utf-8")
        #expect(try h.text() == "{\"event\": \"created\"},{\"event\":\"a\"},{\"event\":\"b\"},[1,2],[3,4],[[1,2,3]],")
    }

    @Test(arguments: StoreBackend.all, ["\"string\"", "42", "true", "null"])
    func jsonScalarsAreOneMessage(_ backend: StoreBackend, body: String) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        try h.append(body, type: "application/json")
        #expect(try h.text() == body + ",")
    }

    @Test(arguments: StoreBackend.all) func jsonEmptyArrayAppendIsABadRequest(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        #expect(h.appendError("[]", type: "application/json")?.status == .badRequest)
        #expect(try h.info().tail == .zero)
    }

    @Test(arguments: StoreBackend.all, ["{ invalid json }", "[1,2,]", "{\"a\":1}}", "01", "\"unterminated"])
    func invalidJSONAppendIsABadRequest(_ backend: StoreBackend, body: String) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json", body: "[1]")
        #expect(h.appendError(body, type: "application/json")?.status == .badRequest)
        #expect(try h.text() == "1,")
    }

    // MARK: Stream-Seq

    @Test(arguments: StoreBackend.all) func streamSeqMustStrictlyIncrease(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("first", seq: "001")
        try h.append("second", seq: "002")
        #expect(h.appendError("invalid", seq: "001")?.status == .conflict)
        #expect(h.appendError("repeat", seq: "002")?.status == .conflict)
        #expect(try h.text() == "firstsecond")
    }

    @Test(arguments: StoreBackend.all) func streamSeqComparesBytewiseNotNumerically(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("numeric")
        try h.append("numeric", "a", seq: "2")
        #expect(h.appendError("numeric", "b", seq: "10")?.status == .conflict)

        try h.create("padded")
        try h.append("padded", "a", seq: "09")
        try h.append("padded", "b", seq: "10")
        #expect(try h.text("padded") == "ab")
    }

    @Test(arguments: StoreBackend.all) func streamSeqIsCaseSensitive(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", seq: "a")
        // "B" (0x42) sorts before "a" (0x61).
        #expect(h.appendError("b", seq: "B")?.status == .conflict)
        try h.append("c", seq: "b")
    }

    @Test(arguments: StoreBackend.all) func streamSeqAcceptsAPrefixExtension(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", seq: "abc")
        try h.append("b", seq: "abcd")
        #expect(h.appendError("c", seq: "abc")?.status == .conflict)
        #expect(h.appendError("c", seq: "ab")?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func streamSeqIsScopedPerStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a")
        try h.create("b")
        try h.append("a", "x", seq: "5")
        try h.append("b", "y", seq: "1")
        #expect(h.appendError("a", "z", seq: "1")?.status == .conflict)
    }

    @Test(arguments: StoreBackend.all) func appendsWithoutStreamSeqDoNotResetIt(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        try h.append("a", seq: "5")
        try h.append("b")
        #expect(h.appendError("c", seq: "4")?.status == .conflict)
        try h.append("d", seq: "6")
    }

    @Test(arguments: StoreBackend.all) func aRejectedAppendDoesNotRecordItsStreamSeq(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(type: "application/json")
        try h.append("1", type: "application/json", seq: "5")
        #expect(h.appendError("not json", type: "application/json", seq: "6")?.status == .badRequest)
        try h.append("2", type: "application/json", seq: "6")
        #expect(try h.text() == "1,2,")
    }
}
