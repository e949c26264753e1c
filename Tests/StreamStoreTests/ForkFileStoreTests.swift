import DurableStreams
import Foundation
import NIOCore
import Testing
@testable import StreamStore

// What only the file store must do for forks: keep them across a restart, share the source's
// files instead of copying them, and settle soft deletes and expiry at start-up.

private let json = "application/json"
private let octets = "application/octet-stream"

@Suite("FileStore: forks on disk")
struct ForkFileStoreTests {
    private func fileHarness(_ configure: (inout FileStoreOptions) -> Void = { _ in }) throws -> StoreHarness {
        try StoreHarness(.file, configure: configure)
    }

    private func streamDirectories(_ h: StoreHarness) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: h.fileOptions!.directory + "/streams").sorted()
    }

    /// The directory holding a stream's own files, found from its id (`incarnation-number`).
    private func directory(of path: String, _ h: StoreHarness) throws -> String {
        let id = try h.info(path).id
        let number = try #require(id.split(separator: "-").last.flatMap { UInt64($0) })
        return h.fileOptions!.directory + "/streams/" + StreamFiles.hex(number)
    }

    /// The files in a directory with their sizes, by name.
    private func files(in directory: String) throws -> [String: UInt64] {
        var sizes: [String: UInt64] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + name)
            sizes[name] = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        }
        return sizes
    }

    // Forks, chains and soft deletes survive a restart: same reads and infos, the deleted source still 410,
    // and deleting the last fork afterwards still removes it.
    @Test func forksSurviveARestart() throws {
        let h = try fileHarness()
        try h.create("a", body: "abcdef")
        try h.fork("b", from: "a", offset: offset(3), body: "XYZ")
        try h.fork("c", from: "b", offset: offset(5), body: "!")
        try h.create("j", type: json, body: "[1,2,3]")
        try h.fork("k", from: "j", offset: .zero, subOffset: 2, body: "[44]")
        try h.delete("a")
        let before = try ["b", "c", "k"].map { try h.info($0) }

        let report = try h.reopen()
        #expect(report.streams == 5)
        #expect(report.expiredRemoved == 0 && report.uncommittedBytesCut == 0 && report.committedBytesMissing == 0)
        #expect(try ["b", "c", "k"].map { try h.info($0) } == before)
        #expect(try h.text("b") == "abcXYZ")
        #expect(try h.text("c") == "abcXY!")
        #expect(try h.json("k") == "[1,2,44]")
        #expect(try h.readAll("c", maxBytes: 1).bytes == Array("abcXY!".utf8))
        #expect(h.store.streamCount == 4)
        // The deleted source stays soft-deleted.
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(h.readError("a") == ForkErrors.gone)
        #expect(h.createError("a") == ForkErrors.nameTaken)
        #expect(h.forkError("d", from: "a") == ForkErrors.sourceGone)
        // The JSON fork's boundaries came back: inherited and its own.
        #expect(try h.json("k", from: .offset(offset(2))) == "[2,44]")
        #expect(h.readError("k", from: .offset(offset(1)))?.status == .badRequest)
        #expect(h.readError("k", from: .offset(offset(6)))?.status == .badRequest)  // j's third message ends there, not k's
        // Forks keep working, and the cascade still runs.
        try h.append("b", "+")
        #expect(try h.text("b") == "abcXYZ+" && h.text("c") == "abcXY!")
        try h.delete("c")
        try h.drainCommits()
        #expect(h.infoError("a") == ForkErrors.gone)  // b still uses it
        try h.delete("b")
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
        try h.reopen()
        #expect(h.infoError("a")?.status == .notFound)
        #expect(h.store.streamCount == 2)
        #expect(try streamDirectories(h).count == 2)
    }

    // The restart re-counts references: a source with forks is still only soft-deleted by a delete after it.
    @Test func referencesAreCountedAgainAfterARestart() throws {
        let h = try fileHarness()
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        try h.fork("c", from: "a")
        try h.reopen()
        try h.delete("a")
        #expect(h.infoError("a") == ForkErrors.gone)
        try h.delete("b")
        try h.drainCommits()
        #expect(h.infoError("a") == ForkErrors.gone)
        try h.delete("c")
        #expect(try h.eventually { h.infoError("a")?.status == .notFound })
    }

    // Forking copies nothing: the fork's directory holds only the bytes it appends (O(1) in the source's size).
    @Test func aForkWritesOnlyItsOwnBytes() throws {
        let h = try fileHarness()
        try h.create("a", type: octets)
        var source: [UInt8] = []
        for index in 0..<10 {
            let chunk = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
            try h.appendBytes("a", chunk, type: octets)
            source += chunk
        }
        #expect(try files(in: directory(of: "a", h)).count >= 10)
        try h.fork("b", from: "a")
        let forkDirectory = try directory(of: "b", h)
        #expect(try files(in: forkDirectory).isEmpty)
        try h.appendBytes("b", Array("xyz".utf8), type: octets)
        #expect(try files(in: forkDirectory) == [StreamFiles.segmentName(40_960): 3])
        // A fork with a body writes just the body, in a segment that starts at its fork point.
        try h.fork("c", from: "a", offset: offset(1000), body: "hello")
        #expect(try files(in: directory(of: "c", h)) == [StreamFiles.segmentName(1000): 5])
        try h.reopen()
        #expect(try h.contents("b") == source + Array("xyz".utf8))
        #expect(try h.contents("c") == Array(source[0..<1000]) + Array("hello".utf8))
        #expect(try h.contents("a") == source)
    }

    // A JSON fork's message index holds only its own messages.
    @Test func aJSONForksIndexHoldsOnlyItsOwnMessages() throws {
        let h = try fileHarness()
        try h.create("j", type: json)
        for batch in 0..<10 {
            try h.append("j", "[" + (0..<20).map { "\(batch * 20 + $0)" }.joined(separator: ",") + "]", type: json)
        }
        try h.fork("k", from: "j", offset: .zero, subOffset: 150)
        let forkDirectory = try directory(of: "k", h)
        #expect(try files(in: forkDirectory).isEmpty)
        try h.append("k", "[\"a\",\"b\"]", type: json)
        let written = try files(in: forkDirectory)
        #expect(written["messages.idx"] == 16)
        #expect(written.count == 2)
        try h.reopen()
        let expected = "[" + (0..<150).map(String.init).joined(separator: ",") + ",\"a\",\"b\"]"
        #expect(try h.json("k") == expected)
    }

    // At start-up a fork's files are cut back to its committed end like any stream's; its files start at its fork point.
    @Test func uncommittedBytesOfAForkAreCutAtStartUp() throws {
        let h = try fileHarness()
        try h.create("a", type: octets, body: "0123456789")
        try h.fork("b", from: "a", offset: offset(4), body: "abc")
        try h.create("j", type: json, body: "[1,2,3]")
        try h.fork("k", from: "j", offset: offset(2))
        try h.append("k", "[7]", type: json)
        try h.fork("empty", from: "a")
        let forkDirectory = try directory(of: "b", h)
        let jsonDirectory = try directory(of: "k", h)
        let emptyDirectory = try directory(of: "empty", h)
        h.shutDownStore()
        // A crash after bytes were written but before their commit: torn records at the end of
        // the fork's segment and index, a segment below the fork point, one for a fork with nothing.
        for file in [forkDirectory + "/" + StreamFiles.segmentName(4), jsonDirectory + "/" + StreamFiles.segmentName(2),
                     jsonDirectory + "/messages.idx"] {
            let handle = try #require(FileHandle(forWritingAtPath: file))
            handle.seekToEndOfFile()
            handle.write(Data("torn!!!!".utf8))
            try handle.close()
        }
        _ = FileManager.default.createFile(atPath: forkDirectory + "/" + StreamFiles.segmentName(0), contents: Data("stray".utf8))
        _ = FileManager.default.createFile(atPath: emptyDirectory + "/" + StreamFiles.segmentName(10), contents: Data("never".utf8))
        let report = try h.reopen()
        #expect(report.uncommittedBytesCut > 0)
        #expect(report.committedBytesMissing == 0)
        #expect(try h.text("b") == "0123abc")
        #expect(try h.json("k") == "[1,7]")
        #expect(try h.text("empty") == "0123456789")
        #expect(try files(in: forkDirectory) == [StreamFiles.segmentName(4): 3])
        #expect(try files(in: emptyDirectory).isEmpty)
        // Appends continue at the committed ends.
        try h.append("b", "d", type: octets)
        try h.append("k", "[8]", type: json)
        try h.append("empty", "!", type: octets)
        try h.reopen()
        #expect(try h.text("b") == "0123abcd")
        #expect(try h.json("k") == "[1,7,8]")
        #expect(try h.text("empty") == "0123456789!")
    }

    // The cascade removes the files of every level once the last fork is deleted.
    @Test func theCascadeRemovesEveryLevelsFiles() throws {
        let h = try fileHarness()
        try h.create("a", body: "abc")
        try h.fork("b", from: "a", body: "def")
        try h.fork("c", from: "b", body: "ghi")
        try h.delete("a")
        try h.delete("b")
        try h.drainCommits()
        #expect(try streamDirectories(h).count == 3)
        try h.delete("c")
        #expect(try h.eventually { try streamDirectories(h).isEmpty })
        let report = try h.reopen()
        #expect(report.streams == 0)
    }

    // A stop between a fork's removal and its source's (the cascade's second commit) leaves a
    // soft-deleted stream that nothing uses: start-up removes it and says so.
    @Test func startUpFinishesAnInterruptedCascade() throws {
        let h = try fileHarness()
        try h.create("a", body: "abc")
        try h.fork("b", from: "a", body: "def")
        try h.delete("a")
        let forkID = try #require(try h.info("b").id.split(separator: "-").last.flatMap { UInt64($0) })
        h.shutDownStore()
        // What a crash right after the fork's delete committed leaves in LMDB: no fork record.
        let lmdb = try LMDBEnvironment(
            path: h.fileOptions!.directory + "/meta",
            databases: [FileStoreRecovery.streamsDatabase, FileStoreRecovery.producersDatabase, FileStoreRecovery.storeDatabase])
        _ = try lmdb.write { try $0.delete(FileStoreRecovery.streamsDatabase, RecordKey.stream(forkID)) }
        lmdb.close()
        let report = try h.reopen()
        #expect(report.cascadeRemoved == 1 && report.expiredRemoved == 0)
        #expect(report.description.contains("removed 1 deleted streams whose last fork had gone"))
        #expect(h.infoError("a")?.status == .notFound)
        #expect(try streamDirectories(h).isEmpty)
        try h.create("a", body: "new")
    }

    // A source that expired while the server was down is soft-deleted at start-up if a fork uses it;
    // both go once the fork has expired too.
    @Test func expiryWhileDownSoftDeletesThenRemoves() throws {
        let h = try fileHarness()
        try h.create("a", lifetime: .ttl(seconds: 10), body: "abc")
        try h.fork("b", from: "a", lifetime: .ttl(seconds: 1000), body: "def")
        h.clock.advance(by: 20)
        let first = try h.reopen()
        #expect(first.expiredRemoved == 0)
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("b") == "abcdef")
        #expect(h.store.streamCount == 1)
        h.clock.advance(by: 1000)
        let second = try h.reopen()
        // The fork expired; its source, soft-deleted since the first start, went with it.
        #expect(second.expiredRemoved == 1 && second.cascadeRemoved == 1)
        #expect(h.infoError("a")?.status == .notFound)
        #expect(h.infoError("b")?.status == .notFound)
        #expect(try streamDirectories(h).isEmpty)
    }

    // A fork whose creation failed to commit holds no reference: its source is then deleted outright.
    @Test func aFailedForkHoldsNoReference() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create("a", body: "abc")
        faults.failWrites(with: ENOSPC)
        #expect(h.forkError("b", from: "a")?.status == .insufficientStorage)
        faults.failWrites(with: nil)
        #expect(h.infoError("b")?.status == .notFound)
        try h.delete("a")
        #expect(h.infoError("a")?.status == .notFound)
        try h.reopen()
        #expect(h.infoError("a")?.status == .notFound)
        #expect(try streamDirectories(h).isEmpty)
    }

    // A soft delete whose commit failed did not happen: the stream is live, now and after a restart.
    @Test func aSoftDeleteThatDidNotCommitDidNotHappen() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create("other", body: "x")
        try h.create("a", body: "abc")
        try h.fork("b", from: "a")
        faults.holdCommits()
        let append = h.store.append("other", StoreHarness.appendCommand(Array("more".utf8)), on: h.loop)
        let delete = h.store.delete("a", on: h.loop)
        faults.failWrites(with: ENOSPC)
        faults.releaseCommits()
        #expect(throws: ProtocolError.self) { try append.wait() }
        #expect(throws: ProtocolError.self) { try delete.wait() }
        faults.failWrites(with: nil)
        #expect(try h.text("a") == "abc")
        try h.append("a", "d")
        try h.reopen()
        #expect(try h.text("a") == "abcd")
        try h.delete("a")
        #expect(h.infoError("a") == ForkErrors.gone)
        try h.reopen()
        #expect(h.infoError("a") == ForkErrors.gone)
        #expect(try h.text("b") == "abc")
    }
}

@Suite("FileStoreRecovery.settleLifetimes")
struct SettleLifetimesTests {
    private func state(_ name: String, lifetime: StreamLifetime = .unlimited, lastAccess: Double = 0,
                       source: UInt64? = nil, softDeleted: Bool = false) -> CommittedState {
        var record = StreamRecord(
            name: name, contentType: .octetStream, lifetime: lifetime, lastAccess: lastAccess, tail: 0, messageCount: 0,
            closed: false, closedBy: nil, lastSeq: nil, nextProducerSerial: 0)
        if let source {
            record.sourceID = source
            record.fork = ForkOrigin(source: "source-of-\(name)", anchor: .zero, subOffset: 0)
        }
        record.softDeleted = softDeleted
        return CommittedState(record: record, producers: [:])
    }

    // A soft-deleted stream that no fork uses (an interrupted cascade) is removed.
    @Test func aSoftDeletedStreamWithoutForksIsRemoved() {
        var states: [UInt64: CommittedState] = [1: state("a", softDeleted: true), 2: state("plain")]
        let (removed, counts) = FileStoreRecovery.settleLifetimes(&states, now: 100)
        #expect(removed == [1])
        #expect(states.keys.sorted() == [2])
        #expect(counts[2, default: 0] == 0)
    }

    // A soft-deleted stream that a fork uses stays, soft-deleted, with its fork counted.
    @Test func aSoftDeletedStreamWithAForkStays() {
        var states: [UInt64: CommittedState] = [1: state("a", softDeleted: true), 2: state("b", source: 1)]
        let (removed, counts) = FileStoreRecovery.settleLifetimes(&states, now: 100)
        #expect(removed.isEmpty)
        #expect(states[1]?.record.softDeleted == true && states[2]?.record.softDeleted == false)
        #expect(counts[1] == 1)
    }

    // A stream whose lifetime ended while forks use it becomes soft-deleted (TTL and Expires-At alike).
    @Test func anExpiredStreamWithForksIsSoftDeleted() {
        var states: [UInt64: CommittedState] = [
            1: state("ttl", lifetime: .ttl(seconds: 10), lastAccess: 0),
            2: state("fork-of-ttl", source: 1),
            3: state("until", lifetime: .expiresAt(seconds: 50, text: "t")),
            4: state("fork-of-until", source: 3),
        ]
        let (removed, counts) = FileStoreRecovery.settleLifetimes(&states, now: 50)
        #expect(removed.isEmpty)
        #expect(states[1]?.record.softDeleted == true && states[3]?.record.softDeleted == true)
        #expect(states[2]?.record.softDeleted == false && states[4]?.record.softDeleted == false)
        #expect(counts[1] == 1 && counts[3] == 1)
    }

    // A stream whose lifetime ended without forks is removed; one whose lifetime has not ended is untouched.
    @Test func expiredStreamsWithoutForksAreRemoved() {
        var states: [UInt64: CommittedState] = [
            1: state("ttl", lifetime: .ttl(seconds: 10), lastAccess: 0),
            2: state("until", lifetime: .expiresAt(seconds: 10, text: "t")),
            3: state("later", lifetime: .ttl(seconds: 10), lastAccess: 5),
            4: state("forever"),
        ]
        let (removed, _) = FileStoreRecovery.settleLifetimes(&states, now: 10)
        #expect(removed.sorted() == [1, 2])
        #expect(states.keys.sorted() == [3, 4])
        #expect(states.values.allSatisfy { !$0.record.softDeleted })
    }

    // Removing an expired leaf frees its soft-deleted parent, and so on up the chain.
    @Test func removalCascadesUpAChain() {
        var states: [UInt64: CommittedState] = [
            1: state("a", softDeleted: true),
            2: state("b", source: 1, softDeleted: true),
            3: state("c", lifetime: .ttl(seconds: 1), lastAccess: 0, source: 2),
        ]
        let (removed, counts) = FileStoreRecovery.settleLifetimes(&states, now: 5)
        #expect(removed.sorted() == [1, 2, 3])
        #expect(states.isEmpty)
        #expect(counts.isEmpty)
    }

    // An expired middle level with a live fork below it is soft-deleted, and keeps its soft-deleted source alive.
    @Test func anExpiredMiddleWithALiveForkIsSoftDeleted() {
        var states: [UInt64: CommittedState] = [
            1: state("a", softDeleted: true),
            2: state("b", lifetime: .ttl(seconds: 1), lastAccess: 0, source: 1),
            3: state("c", source: 2),
        ]
        let (removed, counts) = FileStoreRecovery.settleLifetimes(&states, now: 5)
        #expect(removed.isEmpty)
        #expect(states[1]?.record.softDeleted == true && states[2]?.record.softDeleted == true)
        #expect(states[3]?.record.softDeleted == false)
        #expect(counts[1] == 1 && counts[2] == 1)
    }
}

@Suite("StreamRecord: version 2 and version 1")
struct StreamRecordForkTests {
    private func base() -> StreamRecord {
        StreamRecord(
            name: "events/1", contentType: ContentType(json)!, lifetime: .expiresAt(seconds: 1_900_000_000.5, text: "2030-03-17T17:46:40.5Z"),
            lastAccess: 1_700_000_123.25, tail: 42, messageCount: 3, closed: true,
            closedBy: ProducerClaim(id: "writer", epoch: 4, seq: 7), lastSeq: "0009", nextProducerSerial: 5)
    }

    // A version-2 record keeps the fork fields (fork point, origin, source id, soft delete) through encoding.
    @Test func aForkRecordRoundTrips() throws {
        var record = base()
        record.lifetime = .ttl(seconds: 60)
        record.base = 17
        record.fork = ForkOrigin(source: "events/source", anchor: StreamOffset(position: 12), subOffset: 5)
        record.sourceID = 99
        record.softDeleted = true
        let encoded = record.encoded()
        #expect(encoded.first == 2)
        let decoded = try #require(StreamRecord(decoding: encoded))
        #expect(decoded == record)
    }

    // A plain record (and a soft-deleted one) round-trips as a non-fork.
    @Test func aPlainRecordRoundTrips() throws {
        var record = base()
        record.lifetime = .unlimited
        record.closedBy = nil
        record.lastSeq = nil
        #expect(StreamRecord(decoding: record.encoded()) == record)
        record.softDeleted = true
        #expect(StreamRecord(decoding: record.encoded()) == record)
    }

    /// A version-1 record written by hand: the layout up to `nextProducerSerial`, big-endian,
    /// strings prefixed by a 32-bit length.
    private func versionOneBytes(version: UInt8 = 1) -> [UInt8] {
        func u64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
        func text(_ value: String) -> [UInt8] {
            let utf8 = Array(value.utf8)
            return (0..<4).map { UInt8(truncatingIfNeeded: UInt32(utf8.count) >> (24 - 8 * $0)) } + utf8
        }
        var bytes: [UInt8] = [version]
        bytes += text("events/1") + text(json)
        bytes += [2] + u64((1_900_000_000.5 as Double).bitPattern) + text("2030-03-17T17:46:40.5Z")
        bytes += u64((1_700_000_123.25 as Double).bitPattern) + u64(42) + u64(3) + [1]
        bytes += [1] + text("writer") + u64(4) + u64(7)
        bytes += [1] + text("0009")
        bytes += u64(5)
        return bytes
    }

    // A version-1 record (written before forks) still decodes, as a stream that is not a fork.
    @Test func aVersionOneRecordDecodesAsANonFork() throws {
        let decoded = try #require(StreamRecord(decoding: versionOneBytes()))
        #expect(decoded == base())
        #expect(decoded.fork == nil && decoded.sourceID == nil && decoded.base == 0 && !decoded.softDeleted)
    }

    // A version-2 record without the fork fields, or an unknown version, does not decode.
    @Test func malformedVersionsAreRefused() {
        #expect(StreamRecord(decoding: versionOneBytes(version: 2)) == nil)
        #expect(StreamRecord(decoding: versionOneBytes(version: 3)) == nil)
        #expect(StreamRecord(decoding: versionOneBytes(version: 0)) == nil)
    }
}
