import DurableStreams
import Foundation
import NIOCore
import Testing
@testable import StreamStore

/// What only a durable store must do: keep everything across a restart, repair what a crash
/// left behind, bound its open files, and survive a full disk. The contract suite covers the
/// protocol behaviour it shares with the memory store.
@Suite("FileStore: restart, recovery, files and failures")
struct FileStoreTests {
    private func fileHarness(_ configure: (inout FileStoreOptions) -> Void = { _ in }) throws -> StoreHarness {
        try StoreHarness(.file, configure: configure)
    }

    private func directory(of h: StoreHarness) -> String { h.fileOptions!.directory }

    private func streamDirectories(_ h: StoreHarness) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory(of: h) + "/streams").sorted()
    }

    // MARK: Restart

    @Test func aRestartKeepsDataClosureAndIdentity() throws {
        let h = try fileHarness()
        try h.create("bytes", type: "application/octet-stream")
        try h.append("bytes", "hello ", type: "application/octet-stream")
        try h.append("bytes", "world", type: "application/octet-stream")
        try h.create("json", type: "application/json", body: "[1,{\"a\":2}]")
        try h.append("json", "[3]", type: "application/json")
        try h.create("closed", body: "the end")
        try h.close("closed")
        let before = try ["bytes", "json", "closed"].map { try h.info($0) }

        let report = try h.reopen()
        #expect(report.streams == 3)
        #expect(report.uncommittedBytesCut == 0)
        #expect(try h.text("bytes") == "hello world")
        #expect(try h.read("json").body.map { String(buffer: $0) }.joined() == "[1,{\"a\":2},3]")
        #expect(try h.text("closed") == "the end")
        // Same ids (so ETags stay valid for caches), tails and closure.
        #expect(try ["bytes", "json", "closed"].map { try h.info($0) } == before)
        #expect(h.appendError("closed", "more")?.status == .conflict)
        // JSON boundaries survive: a read may start after the second message, not inside it.
        #expect(try h.read("json", from: .offset(offset(2))).body.map { String(buffer: $0) }.joined() == "[{\"a\":2},3]")
        #expect(h.readError("json", from: .offset(offset(3)))?.status == .badRequest)
    }

    @Test func producersAndStreamSeqContinueAfterARestart() throws {
        let h = try fileHarness()
        try h.create()
        try h.append("a", seq: "001", producer: ProducerClaim(id: "writer", epoch: 3, seq: 0))
        try h.append("b", seq: "002", producer: ProducerClaim(id: "writer", epoch: 3, seq: 1))
        try h.reopen()
        // A retry of an acknowledged append is a duplicate, not a gap or a second copy.
        let retry = try h.append("b", seq: "002", producer: ProducerClaim(id: "writer", epoch: 3, seq: 1))
        #expect(retry.duplicate)
        #expect(h.appendError("c", seq: "003", producer: ProducerClaim(id: "writer", epoch: 3, seq: 5))?.status == .conflict)
        #expect(h.appendError("c", seq: "003", producer: ProducerClaim(id: "writer", epoch: 2, seq: 0))?.status == .forbidden)
        #expect(h.appendError("c", seq: "002")?.status == .conflict)  // Stream-Seq must still increase
        let next = try h.append("c", seq: "003", producer: ProducerClaim(id: "writer", epoch: 3, seq: 2))
        #expect(!next.duplicate)
        #expect(try h.text() == "abc")
    }

    @Test func aRetryOfTheCloseIsRecognisedAfterARestart() throws {
        let h = try fileHarness()
        try h.create()
        try h.appendBytes(Array("last".utf8), closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        try h.reopen()
        let retry = try h.appendBytes(Array("last".utf8), closed: true, producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        #expect(retry.duplicate && retry.closed)
        #expect(try h.text() == "last")
    }

    @Test func ttlAndExpiryAreKeptAndEnforcedAcrossARestart() throws {
        let h = try fileHarness()
        let start = h.clock.now
        try h.create("ttl", lifetime: .ttl(seconds: 100))
        try h.create("until", lifetime: .expiresAt(seconds: start + 50, text: "later"))
        try h.create("forever")
        h.clock.advance(by: 60)
        // A read renews the sliding TTL; the sweep writes the new access time down.
        _ = try h.read("ttl")
        #expect(try h.sweep() == 1)  // "until" expired
        try h.reopen()
        #expect(try h.info("ttl").expiresAt == start + 160)
        h.clock.advance(by: 101)
        let report = try h.reopen()
        #expect(report.expiredRemoved == 1)
        #expect(h.infoError("ttl")?.status == .notFound)
        #expect(try h.info("forever").expiresAt == nil)
        #expect(try streamDirectories(h).count == 1)
    }

    // MARK: Recovery

    @Test func bytesBeyondTheCommittedEndAreCutAtStartUp() throws {
        let h = try fileHarness()
        try h.create("bytes", type: "application/octet-stream")
        try h.append("bytes", "committed", type: "application/octet-stream")
        try h.create("json", type: "application/json")
        try h.append("json", "[1,2]", type: "application/json")
        h.shutDownStore()
        // A crash after the bytes were written but before their commit: a torn record at the end
        // of the segment and of the message index.
        let root = directory(of: h) + "/streams/"
        for name in try streamDirectories(h) {
            let files = try FileManager.default.contentsOfDirectory(atPath: root + name)
            for file in files {
                let handle = try #require(FileHandle(forWritingAtPath: root + name + "/" + file))
                handle.seekToEndOfFile()
                handle.write(Data("torn!!!".utf8))
                try handle.close()
            }
        }
        let report = try h.reopen()
        #expect(report.uncommittedBytesCut > 0)
        #expect(try h.text("bytes") == "committed")
        #expect(try h.read("json").body.map { String(buffer: $0) }.joined() == "[1,2]")
        // The next appends go where the committed data ends.
        try h.append("bytes", "+more", type: "application/octet-stream")
        try h.append("json", "3", type: "application/json")
        try h.reopen()
        #expect(try h.text("bytes") == "committed+more")
        #expect(try h.read("json").body.map { String(buffer: $0) }.joined() == "[1,2,3]")
    }

    @Test func leftoversOfAnUnfinishedCreateOrDeleteAreRemoved() throws {
        let h = try fileHarness()
        try h.create("kept", body: "x")
        h.shutDownStore()
        // A directory no metadata names: a create that never committed, or a delete that
        // removed the metadata and crashed before the files.
        let orphan = directory(of: h) + "/streams/00000000000000ff"
        try FileManager.default.createDirectory(atPath: orphan, withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: orphan + "/00000000000000000000.seg", contents: Data("ghost".utf8))
        let report = try h.reopen()
        #expect(report.orphansRemoved == 1)
        #expect(!FileManager.default.fileExists(atPath: orphan))
        #expect(try h.text("kept") == "x")
        #expect(h.store.streamCount == 1)
    }

    // MARK: Files

    @Test func deletionRemovesFilesAndMetadata() throws {
        let h = try fileHarness()
        try h.create("gone", body: "data")
        try h.create("stays", body: "data")
        #expect(try streamDirectories(h).count == 2)
        try h.delete("gone")
        #expect(try streamDirectories(h).count == 1)
        try h.reopen()
        #expect(h.infoError("gone")?.status == .notFound)
        // A new stream of the same name starts empty, with a new identity.
        let old = try h.info("stays").id
        let created = try h.create("gone")
        #expect(created.created && created.info.tail == .zero && created.info.id != old)
    }

    @Test func namesNeverBecomeFileNames() throws {
        let h = try fileHarness()
        let names = ["a/b", "a_b", "../../escape", "caf\u{E9}", "cafe\u{301}", String(repeating: "n", count: 2000)]
        for (index, name) in names.enumerated() { try h.create(name, body: "stream \(index)") }
        try h.reopen()
        for (index, name) in names.enumerated() { #expect(try h.text(name) == "stream \(index)") }
        let directories = try streamDirectories(h)
        #expect(directories.count == names.count)
        #expect(directories.allSatisfy { $0.utf8.count == 16 && $0.allSatisfy(\.isHexDigit) })
        #expect(!FileManager.default.fileExists(atPath: directory(of: h) + "/escape"))
    }

    @Test func segmentsRollAtTheirSizeAndReadsCrossThem() throws {
        let h = try fileHarness { $0.segmentBytes = 1000 }
        try h.create(type: "application/octet-stream")
        var expected: [UInt8] = []
        for index in 0..<40 {
            let record = (0..<(97 + index)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            try h.appendBytes(record, type: "application/octet-stream")
            expected += record
        }
        let directory = directory(of: h) + "/streams/" + (try streamDirectories(h)[0])
        let segments = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }
        #expect(segments.count > 3)
        try h.reopen()
        #expect(try h.contents() == expected)
        var collected: [UInt8] = []
        var start = ReadStart.beginning
        while true {
            let page = try h.read(from: start, maxBytes: 333)
            collected += page.bytes
            if page.upToDate { break }
            start = .offset(page.end)
        }
        #expect(collected == expected)
    }

    @Test func moreStreamsThanFileHandlesStayWithinTheLimit() throws {
        let h = try fileHarness { $0.maxFileHandles = 4 }
        for index in 0..<40 {
            try h.create("s\(index)", type: "application/json")
            try h.append("s\(index)", "[\(index)]", type: "application/json")
            #expect(h.fileStore!.openFileHandles <= 4)
        }
        for index in 0..<40 {
            try h.append("s\(index)", "[\(index + 100)]", type: "application/json")
            #expect(try h.read("s\(index)").body.map { String(buffer: $0) }.joined() == "[\(index),\(index + 100)]")
            #expect(h.fileStore!.openFileHandles <= 4)
        }
    }

    // MARK: Failures

    @Test func aFullDiskFailsTheWriterWith507AndKeepsEarlierData() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create()
        try h.append("before", producer: ProducerClaim(id: "p", epoch: 0, seq: 0))
        faults.failWrites(with: ENOSPC)
        let error = h.appendError("lost", producer: ProducerClaim(id: "p", epoch: 0, seq: 1))
        #expect(error?.status == .insufficientStorage)
        #expect(h.createError("new")?.status == .insufficientStorage)
        // Reads keep working, and nothing of the failed append shows.
        #expect(try h.text() == "before")
        #expect(try h.info().tail == offset(6))
        #expect(h.infoError("new")?.status == .notFound)
        faults.failWrites(with: nil)
        // Nothing was recorded for the failed attempt: its retry is a first delivery.
        let retry = try h.append("lost", producer: ProducerClaim(id: "p", epoch: 0, seq: 1))
        #expect(!retry.duplicate)
        #expect(retry.tail == offset(10))
        try h.reopen()
        #expect(try h.text() == "beforelost")
    }

    @Test func anIOErrorIsA500() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create()
        faults.failWrites(with: EIO)
        #expect(h.appendError("x")?.status == .internalServerError)
        faults.failWrites(with: nil)
        try h.append("y")
        #expect(try h.text() == "y")
    }

    @Test func statisticsCountCommitsAndWhereReadsCameFrom() throws {
        let h = try fileHarness { $0.hotTailBytes = 8 }
        try h.create(body: "0123456789")
        try h.append("abcdefghij")
        _ = try h.read(from: .offset(offset(16)))  // the last 4 bytes: in memory
        _ = try h.read()                          // everything: from disk
        let statistics = try #require(h.store.statistics)
        #expect(statistics.committedWrites == 2)
        #expect(statistics.commits >= 1 && statistics.commits <= 2)
        #expect(statistics.memoryReads == 1)
        #expect(statistics.diskReads == 1)
        #expect(statistics.failedCommits == 0)
        #expect(statistics.queuedWrites == 0)
    }

    // MARK: Sending from files

    /// The bytes a `wireBody` stands for, file ranges read back.
    private func bytes(of parts: [IOData]) throws -> [UInt8] {
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

    @Test func largeReadsFromDiskAreSentFromTheFiles() throws {
        let h = try fileHarness { $0.segmentBytes = 100_000 }
        try h.create(type: "application/octet-stream")
        var expected: [UInt8] = []
        for index in 0..<5 {
            let record = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
            try h.appendBytes(record, type: "application/octet-stream")
            expected += record
        }
        let sent = try h.store.readForSending("s", from: .beginning, maxBytes: 1 << 20, touch: false, on: h.loop).wait()
        let files = try #require(sent.files)
        #expect(files.regions.count == 3)  // segments at 0, 100000 and 200000
        #expect(try bytes(of: sent.wireBody) == expected)
        files.close()
        // Small reads, and reads of the in-memory tail, stay bytes.
        let small = try h.store.readForSending("s", from: .beginning, maxBytes: 1000, touch: false, on: h.loop).wait()
        #expect(small.files == nil && small.bytes == Array(expected[0..<1000]))
        // A plain read never hands out files.
        #expect(try h.read().files == nil)
    }

    @Test func aJSONArraySentFromFilesLeavesTheLastSeparatorOut() throws {
        let h = try fileHarness()
        try h.create(type: "application/json")
        let messages = (0..<2000).map { "{\"n\":\($0),\"pad\":\"\(String(repeating: "x", count: 40))\"}" }
        for batch in stride(from: 0, to: messages.count, by: 100) {
            try h.append("[" + messages[batch..<(batch + 100)].joined(separator: ",") + "]", type: "application/json")
        }
        let sent = try h.store.readForSending("s", from: .beginning, maxBytes: 1 << 20, touch: false, on: h.loop).wait()
        #expect(sent.files != nil)
        #expect(String(decoding: try bytes(of: sent.wireBody), as: UTF8.self) == "[" + messages.joined(separator: ",") + "]")
    }

    @Test func historyReadTwiceComesFromTheBlockCache() throws {
        let h = try fileHarness { $0.segmentBytes = 50_000 }
        try h.create(type: "application/octet-stream")
        let block = Int(BlockCache.blockSize)
        let expected = (0..<(3 * block + 500)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 8) }
        for start in stride(from: 0, to: expected.count, by: 10_000) {
            try h.appendBytes(Array(expected[start..<min(start + 10_000, expected.count)]), type: "application/octet-stream")
        }
        func page(_ from: Int, _ count: Int) throws -> [UInt8] {
            try h.read(from: .offset(offset(UInt64(from))), maxBytes: count, touch: false).bytes
        }
        #expect(try page(1000, 1000) == Array(expected[1000..<2000]))
        #expect(h.store.statistics?.diskReads == 1)
        #expect(try page(1500, 2000) == Array(expected[1500..<3500]))
        #expect(h.store.statistics?.cachedReads == 1)
        // Across a cached and an uncached block, and into the last block, which is not whole and
        // is read as it is.
        #expect(try page(block - 10, 3 * block) == Array(expected[(block - 10)..<expected.count]))
        #expect(try page(block - 10, 3 * block) == Array(expected[(block - 10)..<expected.count]))
        #expect(h.store.statistics?.blockCacheBytes == 3 * block)
        // A deleted stream's blocks go with it.
        try h.delete()
        #expect(h.store.statistics?.blockCacheBytes == 0)
    }

    // MARK: Failed batches

    /// Completes once the future does; read after `settle`.
    private func outcome<T: Sendable>(_ future: EventLoopFuture<T>) -> ResultBox<T> {
        let box = ResultBox<T>()
        future.whenComplete { box.set($0) }
        return box
    }

    @Test func aFailedBatchLeavesNoFileBehindForALaterRestartToMisread() throws {
        let faults = StorageFaults()
        let h = try fileHarness {
            $0.faults = faults
            $0.segmentBytes = 100
        }
        let type = "application/octet-stream"
        try h.create(type: type)
        let base = (0..<90).map { UInt8(truncatingIfNeeded: $0) }
        try h.appendBytes(base, type: type)
        // One batch: 20 bytes into the first segment, then 5000 that start a new segment file
        // at 110; the bytes are written, the sync fails, nothing commits.
        faults.holdCommits()
        let small = h.store.append("s", StoreHarness.appendCommand([UInt8](repeating: 0xA1, count: 20), type: type), on: h.loop)
        let large = h.store.append("s", StoreHarness.appendCommand([UInt8](repeating: 0xA2, count: 5000), type: type), on: h.loop)
        faults.failSyncs(with: EIO)
        faults.releaseCommits()
        #expect(throws: ProtocolError.self) { try small.wait() }
        #expect(throws: ProtocolError.self) { try large.wait() }
        faults.failSyncs(with: nil)
        #expect(try h.info().tail == offset(90))
        // Acknowledged appends over the same range: 30 bytes in the first segment (90..<120),
        // then 10 in a new one at 120. The failed 110 file must not come back as data.
        let b = [UInt8](repeating: 0xBB, count: 30)
        let c = [UInt8](repeating: 0xCC, count: 10)
        try h.appendBytes(b, type: type)
        try h.appendBytes(c, type: type)
        #expect(try h.contents() == base + b + c)
        let report = try h.reopen()
        #expect(report.committedBytesMissing == 0)
        #expect(try h.contents() == base + b + c)
    }

    @Test func aDeleteThatDidNotCommitDidNotHappen() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create("other", body: "x")
        try h.create("kept", body: "old")
        faults.holdCommits()
        let append = h.store.append("other", StoreHarness.appendCommand(Array("more".utf8)), on: h.loop)
        let delete = h.store.delete("kept", on: h.loop)
        faults.failWrites(with: ENOSPC)
        faults.releaseCommits()
        #expect(throws: ProtocolError.self) { try append.wait() }
        #expect(throws: ProtocolError.self) { try delete.wait() }
        faults.failWrites(with: nil)
        // The client was told the delete failed, and it did: the stream is there, now and after
        // a restart.
        #expect(try h.text("kept") == "old")
        try h.reopen()
        #expect(try h.text("kept") == "old")
        try h.delete("kept")
        try h.reopen()
        #expect(h.infoError("kept")?.status == .notFound)
    }

    @Test func aRejectionDecidedOnUncommittedStateWaitsForIt() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create(body: "abc")
        faults.holdCommits()
        let close = h.store.append("s", StoreHarness.appendCommand(Array("!".utf8), closed: true), on: h.loop)
        let late = h.store.append("s", StoreHarness.appendCommand(Array("late".utf8)), on: h.loop)
        let refused = outcome(late)
        h.settle()
        // "Stream is closed" is not said while the close could still be lost.
        #expect(refused.result == nil)
        faults.failWrites(with: ENOSPC)
        faults.releaseCommits()
        #expect(throws: ProtocolError.self) { try close.wait() }
        #expect(throws: ProtocolError(.insufficientStorage, "the server's disk is full; nothing was appended")) { try late.wait() }
        faults.failWrites(with: nil)
        // The close never happened: the stream is open and takes the retry.
        #expect(try h.info().closed == false)
        try h.append("late")
        #expect(try h.text() == "abclate")
        #expect(h.store.statistics?.hotTailBytes == 7)
    }

    @Test func aFailedFirstAppendStartsItsSegmentAfresh() throws {
        let faults = StorageFaults()
        let h = try fileHarness { $0.faults = faults }
        try h.create()
        faults.failSyncs(with: EIO)
        #expect(h.appendError("lost")?.status == .internalServerError)
        faults.failSyncs(with: nil)
        try h.append("kept")
        try h.reopen()
        #expect(try h.text() == "kept")
        #expect(h.store.statistics?.failedCommits == 0)  // counted per process run
    }
}

/// A future's result, once it has one.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Result<T, any Error>?

    func set(_ result: Result<T, any Error>) { lock.withLock { stored = result } }
    var result: Result<T, any Error>? { lock.withLock { stored } }
    var error: (any Error)? {
        if case .failure(let error)? = result { return error }
        return nil
    }
}
