import Foundation
import NIOCore

/// Where a stream's files live and the blocking calls that read and write them. Run only on the
/// store's I/O threads.
///
/// A stream's directory is named after its internal numeric id, never after its name, so no
/// name can traverse, collide with another (`a/b` and `a_b`) or be too long for the file system.
/// In it: segment files named by the stream position of their first byte, and for JSON streams
/// `messages.idx`, the end position of every message as 8-byte little-endian integers.
struct StreamFiles: Sendable {
    let root: String
    let handles: FileHandleCache
    let faults: StorageFaults?

    var streamsDirectory: String { root + "/streams" }

    func directory(_ stream: UInt64) -> String {
        streamsDirectory + "/" + Self.hex(stream)
    }

    func segmentPath(_ stream: UInt64, start: UInt64) -> String {
        directory(stream) + "/" + Self.segmentName(start)
    }

    func indexPath(_ stream: UInt64) -> String {
        directory(stream) + "/messages.idx"
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    static func segmentName(_ start: UInt64) -> String {
        let digits = String(start)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg"
    }

    /// The start position a segment file name stands for; `nil` for other files.
    static func segmentStart(_ name: String) -> UInt64? {
        guard name.hasSuffix(".seg"), name.utf8.count == 24 else { return nil }
        return UInt64(name.dropLast(4))
    }

    /// The names in a directory (none if it cannot be read). `readdir` directly: recovery lists
    /// one directory per stream, and Foundation's listing costs several times more each.
    static func list(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes a new stream's directory and makes its entry durable.
    func createDirectory(_ stream: UInt64, sync: Bool) throws(StorageError) {
        try faults?.check("mkdir")
        let path = directory(stream)
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw StorageError(code: errno, operation: "mkdir \(path)") }
        if sync { try syncDirectory(streamsDirectory) }
    }

    /// Writes all of `bytes` at `offset` of a file, creating it if needed.
    func write(_ bytes: ByteBuffer, to key: FileHandleCache.Key, path: String, at offset: UInt64) throws {
        try faults?.check("write \(path)")
        try handles.withDescriptor(key, path: path, create: true) { descriptor in
            try bytes.withUnsafeReadableBytes { raw in
                var done = 0
                while done < raw.count {
                    let written = pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw StorageError(code: errno, operation: "write \(path)")
                    }
                    done += written
                }
            }
        }
    }

    /// Forces a file's data to disk.
    func sync(_ key: FileHandleCache.Key, path: String) throws {
        try faults?.checkSync("fdatasync \(path)")
        try handles.withDescriptor(key, path: path, create: true) { descriptor in
            guard fdatasync(descriptor) == 0 else { throw StorageError(code: errno, operation: "fdatasync \(path)") }
        }
    }

    func syncDirectory(_ path: String) throws(StorageError) {
        try faults?.checkSync("fsync \(path)")
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StorageError(code: errno, operation: "open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StorageError(code: errno, operation: "fsync \(path)") }
    }

    /// One segment's share of a stream range: the segment's start, and the range's part of it
    /// as offsets within the segment file.
    struct Piece {
        let segment: UInt64
        let lower: UInt64
        let upper: UInt64
    }

    /// How `[from, to)` falls across segments starting at `segments` (ascending); `nil` when
    /// the segments do not cover it.
    static func pieces(segments: [UInt64], from: UInt64, to: UInt64) -> [Piece]? {
        var pieces: [Piece] = []
        var position = from
        let first = MessageBoundaries.search(segments, from)
        var index = first.found ? first.index : first.index - 1
        while position < to, index >= 0, index < segments.count {
            let start = segments[index]
            let upTo = min(to, index + 1 < segments.count ? segments[index + 1] : UInt64.max)
            pieces.append(Piece(segment: start, lower: position - start, upper: upTo - start))
            position = upTo
            index += 1
        }
        return position == to ? pieces : nil
    }

    /// Reads `[from, to)` of a stream whose segments start at `segments` (ascending).
    func read(_ stream: UInt64, segments: [UInt64], from: UInt64, to: UInt64) throws -> [ByteBuffer] {
        guard let pieces = Self.pieces(segments: segments, from: from, to: to) else {
            throw StorageError(code: EIO, operation: "read \(directory(stream)): segment missing")
        }
        return try pieces.map { piece in
            try readFile(FileHandleCache.Key(stream: stream, file: piece.segment), path: segmentPath(stream, start: piece.segment),
                         at: piece.lower, count: Int(piece.upper - piece.lower))
        }
    }

    /// `[from, to)` as ranges of freshly opened segment files, each owning its descriptor; `nil`
    /// when a file cannot be opened (out of descriptors, say) or is shorter than the range, and
    /// the caller reads the bytes instead.
    func regions(_ stream: UInt64, segments: [UInt64], from: UInt64, to: UInt64) -> [FileRegion]? {
        guard let pieces = Self.pieces(segments: segments, from: from, to: to) else { return nil }
        var regions: [FileRegion] = []
        for piece in pieces {
            let descriptor = open(segmentPath(stream, start: piece.segment), O_RDONLY | O_CLOEXEC)
            var info = stat()
            guard descriptor >= 0, fstat(descriptor, &info) == 0, UInt64(info.st_size) >= piece.upper,
                let lower = Int(exactly: piece.lower), let upper = Int(exactly: piece.upper)
            else {
                if descriptor >= 0 { close(descriptor) }
                for region in regions { try? region.fileHandle.close() }
                return nil
            }
            regions.append(FileRegion(fileHandle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor),
                                      readerIndex: lower, endIndex: upper))
        }
        return regions
    }

    /// Exactly `count` bytes at `offset`; a short file is an error.
    func readFile(_ key: FileHandleCache.Key, path: String, at offset: UInt64, count: Int) throws -> ByteBuffer {
        try handles.withDescriptor(key, path: path, create: false) { descriptor in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(count)
            var done = 0
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                while done < count {
                    let got = pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if got < 0 {
                        if errno == EINTR { continue }
                        throw StorageError(code: errno, operation: "read \(path)")
                    }
                    if got == 0 { throw StorageError(code: EIO, operation: "read \(path): file shorter than expected") }
                    done += got
                }
                return count
            }
            return buffer
        }
    }

    /// Cuts a stream's files back to its committed end after a failed commit: segments starting
    /// at or beyond `tail` go, the one holding it is truncated there, and the message index
    /// keeps `messageCount` entries.
    func cut(_ stream: UInt64, at tail: UInt64, messageCount: UInt64) throws {
        handles.closeAll(stream: stream)
        let directory = directory(stream)
        let names = Self.list(directory)
        let starts = names.compactMap(Self.segmentStart).sorted()
        for start in starts where start >= tail {
            guard unlink(segmentPath(stream, start: start)) == 0 || errno == ENOENT else {
                throw StorageError(code: errno, operation: "unlink \(segmentPath(stream, start: start))")
            }
        }
        if let last = starts.last(where: { $0 < tail }) {
            try truncate(segmentPath(stream, start: last), to: tail - last)
        }
        let (indexBytes, overflow) = messageCount.multipliedReportingOverflow(by: 8)
        if !overflow, FileManager.default.fileExists(atPath: indexPath(stream)) {
            try truncate(indexPath(stream), to: indexBytes)
        }
    }

    func truncate(_ path: String, to length: UInt64) throws(StorageError) {
        guard length <= UInt64(off_t.max), Foundation.truncate(path, off_t(length)) == 0 else {
            throw StorageError(code: errno, operation: "truncate \(path)")
        }
    }

    /// Removes a stream's directory and everything in it.
    func removeDirectory(_ stream: UInt64) {
        handles.closeAll(stream: stream)
        try? FileManager.default.removeItem(atPath: directory(stream))
    }
}
