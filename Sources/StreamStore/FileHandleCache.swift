import Foundation
import NIOConcurrencyHelpers

/// Open segment and index files, at most `capacity` of them: the least recently used is closed
/// when another is needed, so a hundred thousand streams run within the descriptor limit.
///
/// A handle in use by a read or write on another I/O thread is never closed under it: eviction
/// marks it, and the last user closes it.
final class FileHandleCache: @unchecked Sendable {
    struct Key: Hashable {
        var stream: UInt64
        /// A segment's start position, or `Key.index` for the stream's message index.
        var file: UInt64
        static let index = UInt64.max
    }

    private final class Entry {
        let descriptor: Int32
        var users = 0
        var lastUse: UInt64 = 0
        var retired = false
        init(descriptor: Int32) { self.descriptor = descriptor }
    }

    private let lock = NIOLock()
    private var entries: [Key: Entry] = [:]
    private var clock: UInt64 = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 2)
    }

    var openCount: Int { lock.withLock { entries.count } }

    /// Runs `body` with an open descriptor for `path`, opening (and with `create`, creating) it if
    /// it is not open yet.
    func withDescriptor<R>(_ key: Key, path: String, create: Bool, _ body: (Int32) throws -> R) throws -> R {
        let entry = try acquire(key, path: path, create: create)
        defer { release(entry) }
        return try body(entry.descriptor)
    }

    private func acquire(_ key: Key, path: String, create: Bool) throws -> Entry {
        try lock.withLock {
            clock += 1
            if let entry = entries[key] {
                entry.users += 1
                entry.lastUse = clock
                return entry
            }
            let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
            let descriptor = open(path, flags, 0o600)
            guard descriptor >= 0 else { throw StorageError(code: errno, operation: "open \(path)") }
            let entry = Entry(descriptor: descriptor)
            entry.users = 1
            entry.lastUse = clock
            entries[key] = entry
            evictIfNeeded()
            return entry
        }
    }

    private func release(_ entry: Entry) {
        lock.withLock {
            entry.users -= 1
            if entry.retired && entry.users == 0 { close(entry.descriptor) }
        }
    }

    /// Closes the least recently used handles beyond capacity (those in use close when released).
    private func evictIfNeeded() {
        while entries.count > capacity {
            guard let (key, entry) = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
            retire(key, entry)
        }
    }

    private func retire(_ key: Key, _ entry: Entry) {
        entries[key] = nil
        entry.retired = true
        if entry.users == 0 { close(entry.descriptor) }
    }

    /// Closes every handle of a stream (deleted, or its files are being cut).
    func closeAll(stream: UInt64) {
        lock.withLock {
            for (key, entry) in entries where key.stream == stream { retire(key, entry) }
        }
    }

    func closeAll() {
        lock.withLock {
            for (key, entry) in entries { retire(key, entry) }
        }
    }
}
