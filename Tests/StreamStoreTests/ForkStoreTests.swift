import DurableStreams
import Foundation
import NIOCore
import Testing
@testable import StreamStore

// The fork contract (§4.2), run against every store.

private let json = "application/json"
private let octets = "application/octet-stream"

/// Bytes that depend on their position and a seed, so bytes read from the wrong place show.
private func pattern(_ count: Int, from start: Int = 0, seed: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 8) ^ seed) }
}

@Suite("Store contract: forks, creation and reads")
struct ForkCreateAndReadTests {
    // A fork reads its source's bytes up to the fork point, then its own.
    @Test(arguments: StoreBackend.all) func aForkReadsItsSourceThenItsOwnBytes(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "hello ")
        let made = try h.fork("b", from: "a", body: "world")
        #expect(made.created)
        #expect(made.info.tail == offset(11))
        #expect(try h.text("b") == "hello world")
        let info = try h.info("b")
        #expect(info.tail == offset(11) && !info.closed && info.contentType == ContentType("text/plain")!)
        #expect(info.id != (try h.info("a").id))
        #expect(try h.text("a") == "hello ")
        // "now" is the fork's tail.
        let now = try h.read("b", from: .now)
        #expect(now.isEmpty && now.start == offset(11))
    }

    // Without an offset the fork point is the source's tail at the time of the fork.
    @Test(arguments: StoreBackend.all) func withoutAnOffsetTheForkPointIsTheSourcesTail(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.append("a", "def")
        #expect(try h.fork("b", from: "a").info.tail == offset(6))
        #expect(try h.text("b") == "abcdef")
    }

    // A fork at offset 0 inherits nothing; its appends start at 0.
    @Test(arguments: StoreBackend.all) func aForkAtZeroInheritsNothing(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        #expect(try h.fork("b", from: "a", offset: .zero).info.tail == .zero)
        #expect(try h.text("b") == "")
        #expect(try h.append("b", "x").tail == offset(1))
        #expect(try h.text("b") == "x")
    }

    // A byte stream's sub-offset moves the fork point that many bytes past the offset; appends continue from there.
    @Test(arguments: StoreBackend.all) func aByteSubOffsetAddsBytes(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "0123456789")
        #expect(try h.fork("b", from: "a", offset: offset(4), subOffset: 3).info.tail == offset(7))
        #expect(try h.text("b") == "0123456")
        #expect(try h.append("b", "!").tail == offset(8))
        #expect(try h.text("b") == "0123456!")
    }

    // A JSON sub-offset counts whole messages past the offset.
    @Test(arguments: StoreBackend.all) func aJSONSubOffsetCountsMessages(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        // Stored as `1,"two",{"t":3},4,`: messages end at 2, 8, 16 and 18.
        try h.create("a", type: json, body: "[1,\"two\",{\"t\":3},4]")
        let made = try h.fork("b", from: "a", offset: offset(2), subOffset: 2)
        #expect(made.info.tail == offset(16))
        #expect(try h.json("b") == "[1,\"two\",{\"t\":3}]")
        try h.append("b", "[5]", type: json)
        #expect(try h.json("b") == "[1,\"two\",{\"t\":3},5]")
    }

    // A fork that sends no Content-Type takes its source's; one that sends the same type is accepted.
    @Test(arguments: StoreBackend.all) func aForkTakesItsSourcesType(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1]")
        #expect(try h.fork("b", from: "a").info.contentType == ContentType(json)!)
        #expect(try h.fork("c", from: "a", type: json).info.contentType == ContentType(json)!)
        // Its initial body is framed as JSON messages of its own.
        try h.fork("d", from: "a", body: "[2,3]")
        #expect(try h.json("d") == "[1,2,3]")
        #expect(try h.info("d").tail == offset(6))
    }

    // A fork's initial body and closure are its own.
    @Test(arguments: StoreBackend.all) func aForkMayBeCreatedWithABodyAndClosed(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        let made = try h.fork("b", from: "a", closed: true, body: "xyz")
        #expect(made.info.closed && made.info.tail == offset(6))
        #expect(try h.text("b") == "abcxyz")
        #expect(h.appendError("b", "more")?.status == .conflict)
        #expect(try h.info("a").closed == false)
    }

    // Forking a stream that does not exist is a 404, and creates nothing.
    @Test(arguments: StoreBackend.all) func aMissingSourceIs404(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.forkError("b", from: "nope") == ForkErrors.sourceNotFound)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(h.store.streamCount == 0)
    }

    // A fork that names another Content-Type than its source's is a 409, and holds no reference on the source.
    @Test(arguments: StoreBackend.all) func aTypeMismatchIs409AndHoldsNoReference(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        #expect(h.forkError("b", from: "a", type: json, body: "[1]") == ForkErrors.typeMismatch)
        #expect(h.infoError("b")?.status == .notFound)
        try h.delete("a")
        // Removed, not soft-deleted: nothing uses it.
        #expect(h.infoError("a")?.status == .notFound)
        #expect(h.deleteError("a")?.status == .notFound)
        #expect(h.store.streamCount == 0)
    }

    // An offset beyond the source's tail is a 400, and holds no reference on the source.
    @Test(arguments: StoreBackend.all) func anOffsetBeyondTheTailIs400(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        #expect(h.forkError("b", from: "a", offset: offset(4))?.status == .badRequest)
        #expect(try h.fork("b", from: "a", offset: offset(3)).info.tail == offset(3))
        try h.delete("b")
        try h.delete("a")
        #expect(h.infoError("a")?.status == .notFound)
    }

    // A byte sub-offset past the source's data is a 400; one that reaches the tail exactly is fine.
    @Test(arguments: StoreBackend.all) func aByteSubOffsetPastTheDataIs400(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abcdef")
        #expect(h.forkError("b", from: "a", offset: offset(4), subOffset: 3)?.status == .badRequest)
        #expect(h.forkError("b", from: "a", subOffset: 1)?.status == .badRequest)  // the tail, plus one
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.fork("b", from: "a", offset: offset(4), subOffset: 2).info.tail == offset(6))
    }

    // A JSON sub-offset past the last message is a 400, and holds no reference on the source.
    @Test(arguments: StoreBackend.all) func aJSONSubOffsetPastTheMessagesIs400(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1,2]")
        #expect(h.forkError("b", from: "a", offset: .zero, subOffset: 3)?.status == .badRequest)
        #expect(h.forkError("b", from: "a", subOffset: 1)?.status == .badRequest)
        try h.delete("a")
        #expect(h.infoError("a")?.status == .notFound)
        try h.create("a", type: json, body: "[1,2]")
        #expect(try h.fork("b", from: "a", offset: .zero, subOffset: 2).info.tail == offset(4))
    }

    // A JSON fork offset inside a message is a 400.
    @Test(arguments: StoreBackend.all) func aJSONOffsetInsideAMessageIs400(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[10,20]")  // `10,20,`: ends at 3 and 6
        for position: UInt64 in [1, 2, 4, 5] {
            #expect(h.forkError("b", from: "a", offset: offset(position))?.status == .badRequest, "offset \(position)")
        }
        #expect(try h.fork("b", from: "a", offset: offset(3)).info.tail == offset(3))
        #expect(try h.json("b") == "[10]")
    }

    // Paging through a byte fork from -1 with any budget yields exactly the inherited bytes, then its own.
    @Test(arguments: StoreBackend.all, [1, 2, 3, 5, 7, 8, 100])
    func pagedReadsCrossTheForkPoint(_ backend: StoreBackend, maxBytes: Int) throws {
        let h = try StoreHarness(backend)
        let source = pattern(10)
        let own = pattern(8, seed: 0x5A)
        try h.create("a", type: octets)
        try h.appendBytes("a", source, type: octets)
        try h.fork("b", from: "a", offset: offset(7))
        try h.appendBytes("b", own, type: octets)
        let read = try h.readAll("b", maxBytes: maxBytes)
        #expect(read.bytes == Array(source[0..<7]) + own)
        #expect(read.pages.allSatisfy { $0.count <= maxBytes })
        #expect(read.pages.last?.upperBound == 15)
    }

    // Paging through a JSON fork yields whole messages only, exactly the inherited ones then its own.
    @Test(arguments: StoreBackend.all, [1, 3, 5, 6, 8, 100])
    func pagedJSONReadsCrossTheForkPoint(_ backend: StoreBackend, maxBytes: Int) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1,22,333,4444]")  // ends 2, 5, 9, 14
        try h.fork("b", from: "a", offset: .zero, subOffset: 2)  // fork point 5
        try h.append("b", "[55555,6]", type: json)                // ends 11, 13
        let read = try h.readAll("b", maxBytes: maxBytes)
        #expect(String(decoding: read.bytes, as: UTF8.self) == "1,22,55555,6,")
        #expect(read.pages.allSatisfy { [0, 2, 5, 11, 13].contains($0.lowerBound) && [2, 5, 11, 13].contains($0.upperBound) })
        #expect(try h.json("b") == "[1,22,55555,6]")
    }

    // A JSON fork's reads may start at any inherited message end, but not at a source's message end past the fork point.
    @Test(arguments: StoreBackend.all) func jsonReadOffsetsOfAFork(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1,22,333,4444]")  // ends 2, 5, 9, 14
        try h.fork("b", from: "a", offset: offset(5))
        try h.append("b", "[55555,6]", type: json)                // ends 11, 13
        #expect(try h.json("b", from: .offset(offset(2))) == "[22,55555,6]")
        #expect(try h.json("b", from: .offset(offset(5))) == "[55555,6]")
        #expect(try h.json("b", from: .offset(offset(11))) == "[6]")
        #expect(h.readError("b", from: .offset(offset(9)))?.status == .badRequest)
        #expect(h.readError("b", from: .offset(offset(3)))?.status == .badRequest)
    }

    // Large forks read correctly in pages and whole, across segments, blocks and memory.
    @Test(arguments: StoreBackend.all, [30_000, 65_536, 1 << 20])
    func largeForksReadEveryByte(_ backend: StoreBackend, maxBytes: Int) throws {
        let h = try StoreHarness(backend)
        let source = pattern(200_000, seed: 1)
        let own = pattern(150_000, from: 100_001, seed: 2)
        try h.create("a", type: octets)
        for start in stride(from: 0, to: source.count, by: 10_000) {
            try h.appendBytes("a", Array(source[start..<min(start + 10_000, source.count)]), type: octets)
        }
        try h.fork("b", from: "a", offset: offset(100_001))
        for start in stride(from: 0, to: own.count, by: 10_000) {
            try h.appendBytes("b", Array(own[start..<min(start + 10_000, own.count)]), type: octets)
        }
        let expected = Array(source[0..<100_001]) + own
        // Twice: the second time history may come from a cache.
        #expect(try h.readAll("b", maxBytes: maxBytes).bytes == expected)
        #expect(try h.readAll("b", maxBytes: maxBytes).bytes == expected)
        #expect(try h.contents("a") == source)
        // A read meant for sending gives the same bytes.
        let sent = try h.store.readForSending("b", from: .beginning, maxBytes: 1 << 30, touch: false, on: h.loop).wait()
        #expect(try Self.bytes(of: sent.wireBody) == expected)
        sent.files?.close()
    }

    /// The bytes a `wireBody` stands for, file ranges read back.
    private static func bytes(of parts: [IOData]) throws -> [UInt8] {
        try parts.flatMap { part -> [UInt8] in
            switch part {
            case .byteBuffer(let buffer):
                return Array(buffer.readableBytesView)
            case .fileRegion(let region):
                return try region.fileHandle.withUnsafeFileDescriptor { descriptor in
                    var bytes = [UInt8](repeating: 0, count: region.readableBytes)
                    let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(region.readerIndex)) }
                    #expect(got == region.readableBytes)
                    return bytes
                }
            }
        }
    }
}

@Suite("Store contract: forks, independence and chains")
struct ForkIndependenceTests {
    // After a fork, the source's appends are invisible to the fork and the fork's to the source.
    @Test(arguments: StoreBackend.all) func sourceAndForkDivergeAfterTheForkPoint(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        #expect(try h.append("a", "DEF").tail == offset(6))
        #expect(try h.append("b", "xyz").tail == offset(6))
        #expect(try h.text("a") == "abcDEF")
        #expect(try h.text("b") == "abcxyz")
        #expect(try h.read("b", from: .offset(offset(3))).text == "xyz")
        #expect(try h.read("a", from: .offset(offset(3))).text == "DEF")
    }

    // The same for JSON: each side sees only its own messages past the fork point.
    @Test(arguments: StoreBackend.all) func jsonSourceAndForkDiverge(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1]")
        try h.fork("b", from: "a")
        try h.append("a", "[\"source\"]", type: json)
        try h.append("b", "[\"fork\"]", type: json)
        #expect(try h.json("a") == "[1,\"source\"]")
        #expect(try h.json("b") == "[1,\"fork\"]")
    }

    // A fork of a fork composes offsets and sub-offsets through three levels.
    @Test(arguments: StoreBackend.all) func threeLevelsComposeSubOffsets(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "0123456789")
        #expect(try h.fork("b", from: "a", offset: offset(2), subOffset: 3).info.tail == offset(5))
        try h.append("b", "abc")
        #expect(try h.fork("c", from: "b", offset: offset(4), subOffset: 3).info.tail == offset(7))
        try h.append("c", "Z")
        #expect(try h.text("a") == "0123456789")
        #expect(try h.text("b") == "01234abc")
        #expect(try h.text("c") == "01234abZ")
        #expect(try h.readAll("c", maxBytes: 2).bytes == Array("01234abZ".utf8))
    }

    // JSON sub-offsets compose across a chain: counted messages may span the source's and the parent's own.
    @Test(arguments: StoreBackend.all) func threeLevelsComposeJSONSubOffsets(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: json, body: "[1,2,3]")                  // ends 2, 4, 6
        #expect(try h.fork("b", from: "a", offset: offset(2), subOffset: 1).info.tail == offset(4))
        try h.append("b", "[10,11]", type: json)                         // ends 7, 10
        #expect(try h.fork("c", from: "b", offset: offset(2), subOffset: 2).info.tail == offset(7))
        try h.append("c", "[99]", type: json)
        #expect(try h.json("b") == "[1,2,10,11]")
        #expect(try h.json("c") == "[1,2,10,99]")
        #expect(String(decoding: try h.readAll("c", maxBytes: 1).bytes, as: UTF8.self) == "1,2,10,99,")
    }

    // A fork of a fork made below the parent's own fork point reads only the grandparent's bytes there.
    @Test(arguments: StoreBackend.all) func aForkBelowItsParentsForkPoint(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abcdefghij")
        try h.fork("b", from: "a", offset: offset(6))
        try h.append("b", "XYZ")
        #expect(try h.fork("c", from: "b", offset: offset(3)).info.tail == offset(3))
        try h.append("c", "123")
        #expect(try h.text("c") == "abc123")
        // And one inside the parent's own bytes reads all three levels.
        try h.fork("d", from: "b", offset: offset(8))
        try h.append("d", "!")
        #expect(try h.text("d") == "abcdefXY!")
        #expect(try h.readAll("d", maxBytes: 1).bytes == Array("abcdefXY!".utf8))
    }

    // Forks do not inherit producer states or the last Stream-Seq; the source keeps its own.
    @Test(arguments: StoreBackend.all) func producersAndStreamSeqAreNotInherited(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a")
        try h.append("a", "x", seq: "005", producer: ProducerClaim(id: "p", epoch: 2, seq: 0))
        try h.append("a", "y", seq: "006", producer: ProducerClaim(id: "p", epoch: 2, seq: 1))
        try h.fork("b", from: "a")
        // Epoch 0 would be fenced and seq 0 a duplicate on the source: on the fork, p is new.
        let first = try h.append("b", "z", seq: "001", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(!first.duplicate)
        #expect(try h.text("b") == "xyz")
        // The source still knows its producer and its Stream-Seq.
        #expect(try h.append("a", "y", seq: "006", producer: ProducerClaim(id: "p", epoch: 2, seq: 1)).duplicate)
        #expect(h.appendError("a", "w", seq: "001")?.status == .conflict)
    }

    // A closed source can be forked; the fork is open and takes appends, the source stays closed.
    @Test(arguments: StoreBackend.all) func aClosedSourceCanBeForked(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.close("a")
        let made = try h.fork("b", from: "a")
        #expect(!made.info.closed)
        try h.append("b", "d")
        #expect(try h.text("b") == "abcd")
        #expect(try h.info("a").closed)
        #expect(h.appendError("a", "e")?.status == .conflict)
    }

    // A fork's info reports its own tail, type and identity.
    @Test(arguments: StoreBackend.all) func aForksInfoIsItsOwn(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", type: octets, body: "12345")
        try h.fork("b", from: "a", offset: offset(2))
        try h.appendBytes("b", [9, 9], type: octets)
        let info = try h.info("b")
        #expect(info.tail == offset(4))
        #expect(info.contentType == ContentType(octets)!)
        #expect(info.id != (try h.info("a").id))
        #expect(try h.info("a").tail == offset(5))
    }
}

@Suite("Store contract: forks, idempotent creation")
struct ForkIdempotencyTests {
    // Repeating a fork PUT with the same source, offset, sub-offset, type, lifetime and closure answers "exists", not "created".
    @Test(arguments: StoreBackend.all) func repeatingAForkIsNotACreation(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "0123456789")
        let made = try h.fork("b", from: "a", offset: offset(2), subOffset: 3, lifetime: .ttl(seconds: 60), body: "x")
        try h.append("b", "y")
        let again = try h.fork("b", from: "a", offset: offset(2), subOffset: 3, lifetime: .ttl(seconds: 60), body: "x")
        #expect(made.created && !again.created)
        #expect(again.info.id == made.info.id)
        #expect(again.info.tail == offset(7))
        // Sending the source's type explicitly is the same request.
        #expect(try !h.fork("b", from: "a", offset: offset(2), subOffset: 3, type: "text/plain", lifetime: .ttl(seconds: 60)).created)
    }

    // A repeated fork without an offset is the same while the source's tail has not moved, and a 409 once it has.
    @Test(arguments: StoreBackend.all) func anOmittedOffsetIsTheSourcesTailNow(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        #expect(try !h.fork("b", from: "a").created)
        #expect(try !h.fork("b", from: "a", offset: offset(3)).created)
        try h.append("a", "d")
        #expect(h.forkError("b", from: "a")?.status == .conflict)
    }

    // A repeated fork that differs in source, offset, sub-offset, type, lifetime or closure is a 409.
    @Test(arguments: StoreBackend.all) func aDifferentForkOnTheSamePathIs409(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "0123456789")
        try h.create("other", body: "0123456789")
        try h.create("j", type: json, body: "[1,2,3,4,5]")
        try h.fork("b", from: "a", offset: offset(2), subOffset: 3)
        #expect(h.forkError("b", from: "other", offset: offset(2), subOffset: 3)?.status == .conflict)
        #expect(h.forkError("b", from: "a", offset: offset(3), subOffset: 3)?.status == .conflict)
        #expect(h.forkError("b", from: "a", offset: offset(5), subOffset: 0)?.status == .conflict)  // same point, other request
        #expect(h.forkError("b", from: "a", offset: offset(2), subOffset: 4)?.status == .conflict)
        #expect(h.forkError("b", from: "a", offset: offset(2), subOffset: 3, type: json)?.status == .conflict)
        #expect(h.forkError("b", from: "j", offset: offset(2), subOffset: 3)?.status == .conflict)
        #expect(h.forkError("b", from: "a", offset: offset(2), subOffset: 3, lifetime: .ttl(seconds: 5))?.status == .conflict)
        #expect(h.forkError("b", from: "a", offset: offset(2), subOffset: 3, closed: true)?.status == .conflict)
        #expect(try h.text("b") == "01234")
    }

    // A plain PUT on a fork's path is a 409, and so is a fork PUT on a plain stream's path.
    @Test(arguments: StoreBackend.all) func plainAndForkPutsDoNotMatchEachOther(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        #expect(h.createError("b")?.status == .conflict)
        try h.create("plain")
        #expect(h.forkError("plain", from: "a")?.status == .conflict)
        #expect(h.forkError("a", from: "plain")?.status == .conflict)
    }

    // A repeated fork that was created closed matches only a closed request.
    @Test(arguments: StoreBackend.all) func closureIsPartOfTheForksIdentity(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a", closed: true)
        #expect(try !h.fork("b", from: "a", offset: offset(3), closed: true).created)
        #expect(h.forkError("b", from: "a", offset: offset(3))?.status == .conflict)
    }
}

/// One row of §4.2's lifetime table: what the source has and what the fork asks for.
struct ForkLifetimeCase: Sendable, CustomTestStringConvertible {
    enum Kind: String, Sendable, CaseIterable { case none, ttl, expiresAt }
    var source: Kind
    var fork: Kind

    var testDescription: String { "source \(source.rawValue), fork asks \(fork.rawValue)" }

    static let all = Kind.allCases.flatMap { source in Kind.allCases.map { ForkLifetimeCase(source: source, fork: $0) } }
}

@Suite("Store contract: forks, lifetimes")
struct ForkLifetimeTests {
    private static func lifetime(_ kind: ForkLifetimeCase.Kind, ttl: UInt64, until: Double) -> StreamLifetime {
        switch kind {
        case .none: return .unlimited
        case .ttl: return .ttl(seconds: ttl)
        case .expiresAt: return .expiresAt(seconds: until, text: "t\(Int(until))")
        }
    }

    // A fork that asks for no lifetime takes its source's TTL or Expires-At; one that asks gets its own (all 9 cases).
    @Test(arguments: StoreBackend.all, ForkLifetimeCase.all)
    func theForksLifetime(_ backend: StoreBackend, _ row: ForkLifetimeCase) throws {
        let h = try StoreHarness(backend)
        let start = h.clock.now
        let sourceLifetime = Self.lifetime(row.source, ttl: 60, until: start + 600)
        let asked = Self.lifetime(row.fork, ttl: 30, until: start + 300)
        try h.create("a", lifetime: sourceLifetime, body: "abc")
        h.clock.advance(by: 5)
        let made = try h.fork("b", from: "a", lifetime: asked)
        let expected = row.fork == .none ? sourceLifetime : asked
        let forkedAt = start + 5
        let expiry: Double? = switch expected {
        case .unlimited: nil
        case .ttl(let seconds): forkedAt + Double(seconds)  // counted from the fork's own creation
        case .expiresAt(let instant, _): instant
        }
        #expect(made.info.lifetime == expected)
        #expect(made.info.expiresAt == expiry)
        #expect(try h.info("b").lifetime == expected)
        // Repeating the same request matches what was made.
        #expect(try !h.fork("b", from: "a", offset: offset(3), lifetime: asked).created)
        // The source's lifetime is untouched.
        #expect(try h.info("a").lifetime == sourceLifetime)
    }

    // An inherited TTL slides with the fork's own use, not the source's.
    @Test(arguments: StoreBackend.all) func anInheritedTTLSlidesWithTheFork(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("b", from: "a")
        h.clock.advance(by: 8)
        _ = try h.read("b", touch: true)  // renews b, not a
        h.clock.advance(by: 2)
        #expect(h.infoError("a") == ForkErrors.gone)  // expired while b uses it
        #expect(try h.text("b") == "abc")
        h.clock.advance(by: 8)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
    }
}

@Suite("Store contract: forks, soft delete and cascade")
struct ForkSoftDeleteTests {
    // Deleting a stream that has forks soft-deletes it: every direct operation is a 410, its forks still read its data.
    @Test(arguments: StoreBackend.all) func aDeletedSourceWithForksIsGone(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.delete("a")
        #expect(h.readError("a") == ForkErrors.gone)
        #expect(h.appendError("a", "x") == ForkErrors.gone)
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(h.deleteError("a") == ForkErrors.gone)
        #expect(try h.text("b") == "abc")
        try h.append("b", "d")
        #expect(try h.text("b") == "abcd")
    }

    // A soft-deleted stream's name stays taken: a plain or fork PUT on it is a 409.
    @Test(arguments: StoreBackend.all) func aSoftDeletedNameIsTaken(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.create("other", body: "xyz")
        try h.fork("b", from: "a")
        try h.delete("a")
        #expect(h.createError("a") == ForkErrors.nameTaken)
        #expect(h.createError("a", body: "abc") == ForkErrors.nameTaken)
        #expect(h.forkError("a", from: "other") == ForkErrors.nameTaken)
    }

    // Forking a soft-deleted stream is a 409.
    @Test(arguments: StoreBackend.all) func forkingASoftDeletedStreamIs409(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.delete("a")
        #expect(h.forkError("c", from: "a") == ForkErrors.sourceGone)
        #expect(h.infoError("c")?.status == .notFound)
        // A live fork of it can still be forked, and reads the deleted stream's bytes.
        try h.fork("c", from: "b", offset: offset(2))
        #expect(try h.text("c") == "ab")
    }

    // When the last fork goes, a soft-deleted source goes too, and its name is free again.
    @Test(arguments: StoreBackend.all) func deletingTheLastForkRemovesTheSource(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.fork("c", from: "a", offset: offset(1))
        try h.delete("a")
        try h.delete("b")
        try h.drainCommits()
        #expect(h.infoError("a") == ForkErrors.gone)  // c still uses it
        #expect(try h.text("c") == "a")
        try h.delete("c")
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        let again = try h.create("a")
        #expect(again.created && again.info.tail == .zero)
        #expect(h.store.streamCount == 1)
    }

    // Deleting a fork of a live source leaves the source live; deleting the source afterwards removes it outright.
    @Test(arguments: StoreBackend.all) func deletingAForkLeavesALiveSourceAlone(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.delete("b")
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.text("a") == "abc")
        try h.delete("a")
        #expect(h.infoError("a")?.status == .notFound)
        #expect(try h.create("a").created)
    }

    // The middle of a chain soft-deleted (and its source too): the leaf still reads every level.
    @Test(arguments: StoreBackend.all) func aLeafReadsThroughSoftDeletedLevels(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a", body: "def")
        try h.fork("c", from: "b", body: "ghi")
        try h.delete("b")
        #expect(h.infoError("b") == ForkErrors.gone)
        #expect(try h.text("c") == "abcdefghi")
        try h.delete("a")
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("c") == "abcdefghi")
        #expect(try h.readAll("c", maxBytes: 2).bytes == Array("abcdefghi".utf8))
        #expect(h.store.streamCount == 1)
    }

    // Deleting the leaf of a chain whose other levels are soft-deleted removes all three.
    @Test(arguments: StoreBackend.all) func theCascadeRunsThroughThreeLevels(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a", body: "def")
        try h.fork("c", from: "b", body: "ghi")
        try h.delete("a")
        try h.delete("b")
        try h.delete("c")
        #expect(h.infoError("c")?.status == .notFound)
        #expect(try h.eventually { h.infoError("b")?.status == .notFound && h.infoError("a")?.status == .notFound })
        #expect(h.store.streamCount == 0)
        for name in ["a", "b", "c"] { #expect(try h.create(name).created) }
    }

    // A source deleted before its fork's fork is removed only once both forks below it are gone.
    @Test(arguments: StoreBackend.all) func aSourceWaitsForEveryLevelBelowIt(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.fork("c", from: "b")
        try h.delete("a")
        try h.delete("c")
        try h.drainCommits()
        // b is live and still uses a.
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("b") == "abc")
        try h.delete("b")
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
    }

    // The stream count leaves soft-deleted streams out.
    @Test(arguments: StoreBackend.all) func streamCountExcludesSoftDeletedStreams(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.fork("c", from: "b")
        #expect(h.store.streamCount == 3)
        try h.delete("a")
        #expect(h.store.streamCount == 2)
        try h.delete("b")
        #expect(h.store.streamCount == 1)
        try h.delete("c")
        #expect(try h.eventually { h.store.streamCount == 0 && h.infoError("a")?.status == .notFound })
    }
}

@Suite("Store contract: forks, expiry")
struct ForkExpiryTests {
    // A source whose TTL ends while forks use it is soft-deleted (410) and the fork reads on; when the fork expires both are gone.
    @Test(arguments: StoreBackend.all) func anExpiredSourceWithForksIsSoftDeleted(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("b", from: "a", lifetime: .ttl(seconds: 100), body: "def")
        h.clock.advance(by: 10)
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(h.readError("a") == ForkErrors.gone)
        #expect(h.createError("a") == ForkErrors.nameTaken)
        #expect(h.forkError("c", from: "a") == ForkErrors.sourceGone)
        #expect(try h.text("b") == "abcdef")
        #expect(h.store.streamCount == 1)
        h.clock.advance(by: 100)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        #expect(h.store.streamCount == 0)
    }

    // An expired source kept for its fork goes when the fork is deleted.
    @Test(arguments: StoreBackend.all) func anExpiredSourceGoesWithItsDeletedFork(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("b", from: "a", lifetime: .unlimited)
        try h.fork("c", from: "a", lifetime: .ttl(seconds: 3600))
        try h.delete("b")  // b inherited the TTL; c has its own
        h.clock.advance(by: 10)
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("c") == "abc")
        try h.delete("c")
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        #expect(h.store.streamCount == 0)
        #expect(try h.create("a").created)
    }

    // The expiry sweep soft-deletes an expired source with forks, then removes both once the fork expires.
    @Test(arguments: StoreBackend.all) func theSweepSoftDeletesThenRemoves(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let start = h.clock.now
        try h.create("a", lifetime: .expiresAt(seconds: start + 10, text: "a"), body: "abc")
        try h.fork("b", from: "a", lifetime: .expiresAt(seconds: start + 20, text: "b"))
        h.clock.advance(by: 10)
        #expect(try h.sweep() == 1)
        #expect(h.store.streamCount == 1)
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("b") == "abc")
        #expect(try h.sweep() == 0)  // a soft-deleted stream is not swept again
        h.clock.advance(by: 10)
        #expect(try h.sweep() == 1)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        #expect(h.store.streamCount == 0)
        #expect(try h.sweep() == 0)
    }

    // A source and its fork that expire together are both removed by one sweep.
    @Test(arguments: StoreBackend.all) func aSourceAndForkExpiringTogether(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("b", from: "a")  // inherits the 10 s TTL
        h.clock.advance(by: 10)
        #expect(try h.sweep() == 2)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        #expect(h.store.streamCount == 0)
    }

    // Forking an expired stream: 404 when nothing uses it, 409 when forks keep it soft-deleted.
    @Test(arguments: StoreBackend.all) func forkingAnExpiredSource(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("lonely", lifetime: .ttl(seconds: 10), body: "abc")
        try h.create("used", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("user", from: "used", lifetime: .ttl(seconds: 100))
        h.clock.advance(by: 10)
        #expect(h.forkError("x", from: "lonely") == ForkErrors.sourceNotFound)
        #expect(h.forkError("y", from: "used") == ForkErrors.sourceGone)
        #expect(try h.text("user") == "abc")
    }
}

@Suite("Store contract: forks, waitForChange")
struct ForkWaitTests {
    // A wait on a fork is woken by the fork's appends, not by its source's.
    @Test(arguments: StoreBackend.all) func aForksWaitFollowsTheFork(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        let (_, onFork) = h.wait("b", after: offset(3))
        let (_, onSource) = h.wait("a", after: offset(3))
        #expect(h.outcome(onFork) == nil && h.outcome(onSource) == nil)
        try h.append("a", "x")
        #expect(h.outcome(onSource) == .changed)
        #expect(h.outcome(onFork) == nil)
        try h.append("b", "y")
        #expect(h.outcome(onFork) == .changed)
        #expect(try h.read("b", from: .offset(offset(3))).text == "y")
    }

    // A wait on a fork whose tail is past the offset completes at once, inherited bytes included.
    @Test(arguments: StoreBackend.all) func aWaitBelowTheForksTailCompletesAtOnce(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        let (_, box) = h.wait("b", after: offset(1))
        #expect(h.outcome(box) == .changed)
    }

    // A soft-delete wakes the stream's waiters, and a wait on a soft-deleted stream completes at once; its forks' waits do not.
    @Test(arguments: StoreBackend.all) func waitsOnASoftDeletedStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        let (_, pending) = h.wait("a", after: offset(3))
        let (_, onFork) = h.wait("b", after: offset(3))
        #expect(h.outcome(pending) == nil)
        try h.delete("a")
        #expect(h.outcome(pending) == .changed)
        let (_, late) = h.wait("a", after: offset(3))
        #expect(h.outcome(late) == .changed)
        #expect(h.outcome(onFork) == nil)
        let (_, laterOnFork) = h.wait("b", after: offset(3))
        #expect(h.outcome(laterOnFork) == nil)
        try h.append("b", "!")
        #expect(h.outcome(onFork) == .changed && h.outcome(laterOnFork) == .changed)
    }
}
