import Foundation
import Testing
@testable import StreamStore

/// Runs `body` with the path of a directory that does not exist yet (inside a fresh temporary
/// one, so opening also exercises creating missing parents), removing it all afterwards.
private func withScratchPath<R>(_ body: (String) throws -> R) throws -> R {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("lmdb-tests-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    return try body(root.appendingPathComponent("env").path)
}

private func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// A value of `count` bytes that depends on `seed`, so a value read from the wrong key is caught.
private func value(_ seed: Int, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: seed &* 31 &+ $0) }
}

/// Collects what worker threads report, for checking once they are done.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []

    func add(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
}

private struct Abandon: Error {}

@Suite("LMDB wrapper")
struct LMDBTests {
    @Test func putGetDeleteRoundTrip() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a", "b"])
            defer { env.close() }
            try env.write { txn throws in
                try txn.put("a", bytes("key"), bytes("one"))
                try txn.put("b", bytes("key"), bytes("two"))
                try txn.put("a", bytes("empty"), [])
                // Visible inside the transaction that wrote it.
                #expect(try txn.get("a", bytes("key")) == bytes("one"))
            }
            try env.read { txn throws in
                #expect(try txn.get("a", bytes("key")) == bytes("one"))
                #expect(try txn.get("b", bytes("key")) == bytes("two"))  // databases are separate
                #expect(try txn.get("a", bytes("empty")) == [])
                #expect(try txn.get("a", bytes("missing")) == nil)
            }
            try env.write { txn in try txn.put("a", bytes("key"), bytes("replaced")) }
            #expect(try env.read { try $0.get("a", bytes("key")) } == bytes("replaced"))

            let deleted = try env.write { txn throws in
                (try txn.delete("a", bytes("key")), try txn.delete("a", bytes("key")))
            }
            #expect(deleted.0 == true)  // it was there
            #expect(deleted.1 == false)  // and then it was not
            try env.read { txn throws in
                #expect(try txn.get("a", bytes("key")) == nil)
                #expect(try txn.get("b", bytes("key")) == bytes("two"))
            }
        }
    }

    @Test func valuesSurviveCloseAndReopen() throws {
        try withScratchPath { path in
            let first = try LMDBEnvironment(path: path, databases: ["streams"])
            try first.write { txn throws in
                for i in 0..<100 { try txn.put("streams", bytes("k\(i)"), value(i, count: 200)) }
            }
            first.close()

            // Reopened non-durable, and with a database added: the old one keeps its data.
            let second = try LMDBEnvironment(path: path, databases: ["streams", "meta"], durable: false)
            defer { second.close() }
            try second.read { txn throws in
                for i in 0..<100 { #expect(try txn.get("streams", bytes("k\(i)")) == value(i, count: 200)) }
                #expect(try txn.get("meta", bytes("k0")) == nil)
            }
            try second.write { txn in try txn.put("meta", bytes("x"), bytes("y")) }
            try second.sync()
            #expect(try second.read { try $0.get("meta", bytes("x")) } == bytes("y"))
        }
    }

    @Test func throwingBodyAbortsTheTransaction() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"])
            defer { env.close() }
            try env.write { txn in try txn.put("a", bytes("kept"), bytes("1")) }
            #expect(throws: Abandon.self) {
                try env.write { txn throws in
                    try txn.put("a", bytes("new"), bytes("2"))
                    try txn.put("a", bytes("kept"), bytes("changed"))
                    try txn.delete("a", bytes("kept"))
                    throw Abandon()
                }
            }
            try env.read { txn throws in
                #expect(try txn.get("a", bytes("new")) == nil)
                #expect(try txn.get("a", bytes("kept")) == bytes("1"))
            }
        }
    }

    @Test func forEachVisitsOnlyThePrefixInKeyOrder() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"])
            defer { env.close() }
            // Written out of order; "s/" sorts between "r" and "t", and "s" alone has no slash.
            let keys = ["t/1", "s/b", "r", "s/a", "s", "s/c/deep", "s/", "sa"]
            try env.write { txn throws in
                for key in keys { try txn.put("a", bytes(key), bytes("value of \(key)")) }
            }
            var seen: [String] = []
            try env.read { txn throws in
                try txn.forEach("a", prefix: bytes("s/")) { key, value in
                    let key = String(decoding: key, as: UTF8.self)
                    #expect(value == bytes("value of \(key)"))
                    seen.append(key)
                }
            }
            #expect(seen == ["s/", "s/a", "s/b", "s/c/deep"])

            var all: [String] = []
            try env.read { txn throws in
                try txn.forEach("a", prefix: []) { key, _ in all.append(String(decoding: key, as: UTF8.self)) }
            }
            #expect(all == keys.sorted())

            var none = 0
            try env.read { txn throws in
                try txn.forEach("a", prefix: bytes("zz")) { _, _ in none += 1 }
                try txn.forEach("a", prefix: [UInt8](repeating: 0x73, count: 600)) { _, _ in none += 1 }
            }
            #expect(none == 0)
        }
    }

    @Test func forEachInAWriteMayChangeWhatItWalks() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"])
            defer { env.close() }
            try env.write { txn throws in
                for i in 0..<50 { try txn.put("a", bytes("p/\(1000 + i)"), value(i, count: 300)) }
            }
            // Delete every key as it is visited, and add one after the walk's position.
            var visited: [String] = []
            try env.write { txn throws in
                try txn.forEach("a", prefix: bytes("p/")) { key, _ in
                    visited.append(String(decoding: key, as: UTF8.self))
                    try txn.delete("a", key)
                    if key == bytes("p/1010") { try txn.put("a", bytes("p/1010x"), bytes("added")) }
                }
            }
            var expected = (0..<50).map { "p/\(1000 + $0)" }
            expected.insert("p/1010x", at: 11)
            #expect(visited == expected)
            #expect(try env.read { txn in try txn.get("a", bytes("p/1010x")) } == nil)
        }
    }

    @Test func deleteAllRemovesOnlyThePrefix() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a", "b"])
            defer { env.close() }
            try env.write { txn throws in
                for i in 0..<300 {
                    try txn.put("a", bytes("stream-1/\(i)"), value(i, count: 50))
                    try txn.put("a", bytes("stream-2/\(i)"), value(i, count: 50))
                }
                try txn.put("a", bytes("stream-1"), bytes("no slash"))
                try txn.put("b", bytes("stream-1/0"), bytes("other database"))
            }
            let removed = try env.write { txn in try txn.deleteAll("a", prefix: bytes("stream-1/")) }
            #expect(removed == 300)
            #expect(try env.write { txn in try txn.deleteAll("a", prefix: bytes("stream-1/")) } == 0)
            try env.read { txn throws in
                var remaining = 0
                try txn.forEach("a", prefix: []) { key, _ in
                    #expect(!key.starts(with: bytes("stream-1/")))
                    remaining += 1
                }
                #expect(remaining == 301)
                #expect(try txn.get("a", bytes("stream-1")) == bytes("no slash"))
                #expect(try txn.get("b", bytes("stream-1/0")) == bytes("other database"))
            }
            // An empty prefix empties the database.
            #expect(try env.write { txn in try txn.deleteAll("a", prefix: []) } == 301)
            #expect(try env.read { txn in try txn.get("a", bytes("stream-2/0")) } == nil)
            #expect(try env.read { txn in try txn.get("b", bytes("stream-1/0")) } != nil)
        }
    }

    @Test func overLongAndEmptyKeysThrow() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"])
            defer { env.close() }
            #expect(env.maxKeySize == 511)
            let longest = [UInt8](repeating: 7, count: env.maxKeySize)
            let tooLong = [UInt8](repeating: 7, count: env.maxKeySize + 1)
            try env.write { txn in try txn.put("a", longest, bytes("fits")) }

            for key in [tooLong, [UInt8](repeating: 1, count: 100_000), []] {
                let putError = #expect(throws: LMDBError.self) {
                    try env.write { txn in try txn.put("a", key, bytes("x")) }
                }
                #expect(putError?.code == EINVAL)
                #expect(putError?.operation.contains("\(key.count)-byte key") == true)
                let getError = #expect(throws: LMDBError.self) { try env.read { txn in try txn.get("a", key) } }
                #expect(getError?.code == EINVAL)
                let deleteError = #expect(throws: LMDBError.self) {
                    try env.write { txn in try txn.delete("a", key) }
                }
                #expect(deleteError?.code == EINVAL)
            }
            // The failed writes left nothing behind and the environment is still usable.
            try env.read { txn throws in
                #expect(try txn.get("a", longest) == bytes("fits"))
                var count = 0
                try txn.forEach("a", prefix: []) { _, _ in count += 1 }
                #expect(count == 1)
            }
        }
    }

    @Test func misuseThrowsInsteadOfCrashing() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"])
            // A database that was not opened.
            let unknown = #expect(throws: LMDBError.self) { try env.read { txn in try txn.get("nope", bytes("k")) } }
            #expect(unknown?.code == EINVAL)
            // A transaction kept past its closure.
            var escaped: LMDBWriteTransaction?
            try env.write { escaped = $0 }
            let late = #expect(throws: LMDBError.self) { try escaped?.put("a", bytes("k"), bytes("v")) }
            #expect(late?.code == EINVAL)
            // A write inside a write on the same thread would wait for itself.
            let nested = #expect(throws: LMDBError.self) {
                try env.write { _ in try env.write { _ in } }
            }
            #expect(nested?.code == EDEADLK)
            // A read inside a write is fine, and sees the last commit.
            try env.write { txn throws in
                try txn.put("a", bytes("k"), bytes("uncommitted"))
                #expect(try env.read { try $0.get("a", bytes("k")) } == nil)
            }
            // A closed environment.
            env.close()
            #expect(throws: LMDBError.self) { try env.read { _ in } }
            #expect(throws: LMDBError.self) { try env.sync() }
        }
    }

    @Test func theMapGrowsWhenFull() throws {
        try withScratchPath { path in
            let env = try LMDBEnvironment(path: path, databases: ["a"], mapSize: 64 * 1024)
            // 2000 values of 100 bytes (over 200 KB with LMDB's overhead) in transactions of 100.
            for batch in 0..<20 {
                try env.write { txn throws in
                    for i in (batch * 100)..<((batch + 1) * 100) {
                        try txn.put("a", bytes(String(format: "k%05d", i)), value(i, count: 100))
                    }
                }
            }
            try env.read { txn throws in
                for i in 0..<2000 {
                    #expect(try txn.get("a", bytes(String(format: "k%05d", i))) == value(i, count: 100))
                }
                var count = 0
                try txn.forEach("a", prefix: bytes("k")) { _, _ in count += 1 }
                #expect(count == 2000)
            }
            env.close()

            // Reopened with the same tiny map, now smaller than the data, and a database to
            // create: opening makes room, and so does the next write.
            let reopened = try LMDBEnvironment(path: path, databases: ["a", "b"], mapSize: 64 * 1024)
            defer { reopened.close() }
            try reopened.write { txn in
                for i in 0..<500 { try txn.put("b", bytes(String(format: "k%05d", i)), value(-i, count: 100)) }
            }
            try reopened.read { txn throws in
                #expect(try txn.get("a", bytes("k01999")) == value(1999, count: 100))
                #expect(try txn.get("b", bytes("k00499")) == value(-499, count: 100))
            }
        }
    }

    @Test func concurrentReadsWhileWritingSeeConsistentSnapshots() throws {
        try withScratchPath { path in
            // A small map, so it is grown while readers are running.
            let env = try LMDBEnvironment(path: path, databases: ["log"], mapSize: 64 * 1024)
            defer { env.close() }
            let writes = 300
            // Built once: recomputing 1 KiB per entry visited made the readers CPU-bound.
            let entries = (0..<writes).map { value($0 + 1, count: 1024) }
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                do {
                    if worker == 0 {
                        // Each commit adds one 1 KiB entry and moves the head to the new count.
                        for n in 1...writes {
                            try env.write { txn throws in
                                try txn.put("log", bytes(String(format: "entry/%05d", n - 1)), entries[n - 1])
                                try txn.put("log", bytes("head"), bytes(String(n)))
                            }
                        }
                    } else {
                        // Every snapshot has exactly `head` entries, each intact.
                        for _ in 0..<100 {
                            try env.read { txn throws in
                                let head = try txn.get("log", bytes("head")).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
                                var seen = 0
                                try txn.forEach("log", prefix: bytes("entry/")) { _, entry in
                                    if seen >= entries.count || entry != entries[seen] { failures.add("entry \(seen) damaged") }
                                    seen += 1
                                }
                                if seen != head { failures.add("head \(head) but \(seen) entries") }
                            }
                        }
                    }
                } catch {
                    failures.add("worker \(worker): \(error)")
                }
            }
            #expect(failures.all == [])
            try env.read { txn throws in
                #expect(try txn.get("log", bytes("head")) == bytes(String(writes)))
            }
        }
    }
}
