import DurableStreams
import Foundation

/// What a `FileStore` found when it opened its data directory.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    public var streams = 0
    public var bytes: UInt64 = 0
    /// Streams whose lifetime ended while the server was down, removed.
    public var expiredRemoved = 0
    /// Soft-deleted streams whose last fork had gone (a cascade the stop interrupted), removed.
    public var cascadeRemoved = 0
    /// Older records of a name recorded twice, removed.
    public var supersededRemoved = 0
    /// Stream directories with no metadata (a crash during a create or delete), removed.
    public var orphansRemoved = 0
    /// Bytes written after the last commit (appends never acknowledged), cut.
    public var uncommittedBytesCut: UInt64 = 0
    /// Committed bytes missing from disk (only possible with `--fsync never` after a power cut,
    /// or damage outside the server): the streams were shortened to what is there.
    public var committedBytesMissing: UInt64 = 0
    public var seconds: Double = 0

    public var description: String {
        var text = "recovered \(streams) streams (\(bytes) bytes) in \(String(format: "%.3f", seconds)) s"
        if uncommittedBytesCut > 0 { text += "; cut \(uncommittedBytesCut) uncommitted bytes" }
        if expiredRemoved > 0 { text += "; removed \(expiredRemoved) expired streams" }
        if cascadeRemoved > 0 { text += "; removed \(cascadeRemoved) deleted streams whose last fork had gone" }
        if supersededRemoved > 0 { text += "; removed \(supersededRemoved) superseded records of re-created names" }
        if orphansRemoved > 0 { text += "; removed \(orphansRemoved) unfinished create/delete leftovers" }
        if committedBytesMissing > 0 { text += "; WARNING: \(committedBytesMissing) committed bytes were missing on disk" }
        return text
    }
}

/// Opening a data directory: LMDB's committed state is the truth; files are cut or cleaned up to
/// match it.
enum FileStoreRecovery {
    static let streamsDatabase = "streams"
    static let producersDatabase = "producers"
    static let storeDatabase = "store"
    private static let incarnationKey = Array("incarnation".utf8)

    static func open(_ options: FileStoreOptions, clock: @escaping FileStore.Clock) throws -> FileStore {
        let started = Date()
        let root = options.directory
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/streams", withIntermediateDirectories: true)
        let lmdb = try LMDBEnvironment(
            path: root + "/meta", databases: [streamsDatabase, producersDatabase, storeDatabase], durable: options.fsync != .never)
        let files = StreamFiles(root: root, handles: FileHandleCache(capacity: options.maxFileHandles), faults: options.faults)

        var incarnation = ""
        var nextID: UInt64 = 1
        var states: [UInt64: CommittedState] = [:]
        try lmdb.write { transaction in
            if let stored = try transaction.get(storeDatabase, incarnationKey) {
                incarnation = String(decoding: stored, as: UTF8.self)
            } else {
                incarnation = String(UInt32.random(in: 0...UInt32.max), radix: 36)
                try transaction.put(storeDatabase, incarnationKey, Array(incarnation.utf8))
            }
            if let stored = try transaction.get(storeDatabase, RecordKey.nextStreamID), let value = RecordKey.decode(stored) {
                nextID = value
            }
            try transaction.forEach(streamsDatabase, prefix: []) { key, value in
                // A record this version cannot read (damage, or a newer version's format) stops
                // the start: treating its stream as absent would delete its files.
                guard let id = RecordKey.decode(key), let record = StreamRecord(decoding: value) else {
                    throw StorageError(code: EINVAL, operation: "metadata of stream \(key) in \(root)/meta cannot be read")
                }
                states[id] = CommittedState(record: record, producers: [:])
            }
            try transaction.forEach(producersDatabase, prefix: []) { key, value in
                guard key.count == 16, let id = RecordKey.decode(key.prefix(8)), let serial = RecordKey.decode(key.suffix(8)),
                    let producer = ProducerRecord(decoding: value)
                else { return }
                states[id]?.producers[StreamKey(producer.id)] = (serial, producer.state)
            }
        }

        var report = RecoveryReport()
        let now = clock()
        // Directories nobody's metadata names: a create that never committed, or a delete whose
        // metadata went but whose files did not.
        for name in StreamFiles.list(files.streamsDirectory) {
            guard let id = UInt64(name, radix: 16), name.count == 16, states[id] != nil else {
                try? manager.removeItem(atPath: files.streamsDirectory + "/" + name)
                report.orphansRemoved += 1
                continue
            }
        }
        // A name recorded twice (a delete whose commit failed while the name was created again,
        // then a stop before the retry): the newest stream is the one clients were using.
        var newest: [StreamKey: UInt64] = [:]
        var superseded: [UInt64] = []
        for (id, state) in states.sorted(by: { $0.key < $1.key }) {
            let key = StreamKey(state.record.name)
            if let older = newest[key] { superseded.append(older) }
            newest[key] = id
        }
        for id in superseded { states[id] = nil }
        if let highest = states.keys.max() { nextID = max(nextID, highest &+ 1) }

        let loaded = states.mapValues(\.record)
        let (ended, forkCounts) = settleLifetimes(&states, now: now)
        var streams: [StreamKey: FileStream] = [:]
        var expired: [UInt64] = ended
        var repaired: [UInt64: StreamRecord] = [:]
        for (id, state) in states {
            var stream = FileStream(id: id, record: state.record, json: state.record.contentType.isJSON, hotTailBytes: options.hotTailBytes)
            stream.producers = state.producers
            stream.forkCount = forkCounts[id] ?? 0
            try repair(&stream, files: files, report: &report)
            if stream.record != loaded[id] { repaired[id] = stream.record }
            stream.durableTail = stream.record.tail
            stream.durableClosed = stream.record.closed
            streams[StreamKey(stream.record.name)] = stream
            report.streams += 1
            report.bytes += stream.record.tail
        }
        expired += superseded
        if !expired.isEmpty || !repaired.isEmpty {
            try lmdb.write { transaction in
                for id in expired {
                    try transaction.delete(streamsDatabase, RecordKey.stream(id))
                    try transaction.deleteAll(producersDatabase, prefix: RecordKey.stream(id))
                }
                for (id, record) in repaired {
                    try transaction.put(streamsDatabase, RecordKey.stream(id), record.encoded())
                }
            }
        }
        for id in expired { files.removeDirectory(id) }
        report.cascadeRemoved = ended.count { loaded[$0]?.softDeleted == true }
        report.expiredRemoved = ended.count - report.cascadeRemoved
        report.supersededRemoved = superseded.count
        report.seconds = Date().timeIntervalSince(started)
        return FileStore(options: options, clock: clock, files: files, lmdb: lmdb, incarnation: incarnation,
                         streams: streams, nextStreamID: nextID, recovery: report)
    }

    /// Applies what happened to lifetimes while the server was down, and finishes cascades a
    /// crash interrupted (§4.2): a stream whose lifetime ended is soft-deleted if forks still
    /// use it and removed otherwise; a soft-deleted stream without forks is removed; removing
    /// one may leave its source without forks, so this repeats until nothing changes. Takes the
    /// removed streams out of `states`; returns them, and the fork count of each stream left.
    static func settleLifetimes(_ states: inout [UInt64: CommittedState], now: Double) -> (removed: [UInt64], forkCounts: [UInt64: Int]) {
        var removed: [UInt64] = []
        while true {
            var counts: [UInt64: Int] = [:]
            for state in states.values {
                if let source = state.record.sourceID { counts[source, default: 0] += 1 }
            }
            var changed = false
            for id in Array(states.keys) {
                let forks = counts[id, default: 0]
                switch settle(softDeleted: states[id]!.record.softDeleted, ended: hasEnded(states[id]!.record, now: now), forks: forks) {
                case .keep:
                    continue
                case .softDelete:
                    states[id]!.record.softDeleted = true
                case .remove:
                    states[id] = nil
                    removed.append(id)
                }
                changed = true
            }
            if !changed { return (removed, counts) }
        }
    }

    /// What recovery does with one stream, given whether it is soft-deleted, whether its
    /// lifetime has ended and how many forks use it.
    enum Settlement { case keep, softDelete, remove }

    static func settle(softDeleted: Bool, ended: Bool, forks: Int) -> Settlement {
        if softDeleted { return forks == 0 ? .remove : .keep }
        guard ended else { return .keep }
        return forks > 0 ? .softDelete : .remove
    }

    private static func hasEnded(_ record: StreamRecord, now: Double) -> Bool {
        guard let expiry = record.lifetime.expiry(lastAccess: record.lastAccess) else { return false }
        return now >= expiry
    }

    /// Matches a stream's files to its committed record: segment bytes beyond the committed end
    /// are cut; committed bytes that are missing shorten the stream (and are reported).
    private static func repair(_ stream: inout FileStream, files: StreamFiles, report: inout RecoveryReport) throws {
        let manager = FileManager.default
        let directory = files.directory(stream.id)
        var tail = stream.record.tail
        let names = StreamFiles.list(directory)
        let starts = names.compactMap(StreamFiles.segmentStart).sorted()
        var kept: [UInt64] = []
        var available = stream.record.base  // contiguous committed bytes found on disk (a fork's start at its fork point)
        for (index, start) in starts.enumerated() {
            let path = files.segmentPath(stream.id, start: start)
            let size = fileSize(path)
            guard start < tail, start == available else {
                // Entirely beyond the committed end (or after a gap): never acknowledged.
                report.uncommittedBytesCut += size
                try? manager.removeItem(atPath: path)
                continue
            }
            let limit = index + 1 < starts.count ? min(starts[index + 1], tail) : tail
            let wanted = limit - start
            if size > wanted {
                try files.truncate(path, to: wanted)
                report.uncommittedBytesCut += size - wanted
            }
            available = start + min(size, wanted)
            kept.append(start)
        }
        if available < tail {
            report.committedBytesMissing += tail - available
            tail = available
        }
        if stream.record.contentType.isJSON {
            let indexPath = files.indexPath(stream.id)
            let size = fileSize(indexPath)
            let (wanted, overflow) = stream.record.messageCount.multipliedReportingOverflow(by: 8)
            guard !overflow else { throw StorageError(code: EINVAL, operation: "metadata of stream \(stream.id) is damaged") }
            var ends: [UInt64] = []
            let count = Int(min(size, wanted) / 8)
            if count > 0 {
                let buffer = try files.readFile(FileHandleCache.Key(stream: stream.id, file: FileHandleCache.Key.index),
                                                path: indexPath, at: 0, count: count * 8)
                ends.reserveCapacity(count)
                var reader = buffer
                while let end = reader.readInteger(endianness: .little, as: UInt64.self), end <= tail { ends.append(end) }
            }
            if size > UInt64(ends.count * 8) {
                try files.truncate(indexPath, to: UInt64(ends.count * 8))
            }
            // A JSON stream ends on a message boundary; if committed messages were lost, at the last whole one.
            let lastEnd = ends.last ?? stream.record.base
            if lastEnd < tail {
                report.committedBytesMissing += tail - lastEnd
                tail = lastEnd
            }
            stream.boundaries = MessageBoundaries(ends: ends)
            stream.record.messageCount = UInt64(ends.count)
        }
        if tail < stream.record.tail {
            // Committed bytes were missing: nothing beyond the new end may stay on disk, or a
            // later append would sit beside it and a later recovery take it for data.
            try files.cut(stream.id, at: tail, messageCount: stream.record.messageCount)
        }
        stream.record.tail = tail
        stream.segments = kept.filter { $0 < tail }
    }

    private static func fileSize(_ path: String) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return UInt64(info.st_size)
    }

    /// A stream's committed metadata and producers, read back after a failed commit.
    static func loadState(_ id: UInt64, _ transaction: LMDBReadTransaction) throws -> CommittedState? {
        guard let bytes = try transaction.get(streamsDatabase, RecordKey.stream(id)), let record = StreamRecord(decoding: bytes) else {
            return nil
        }
        var state = CommittedState(record: record, producers: [:])
        try transaction.forEach(producersDatabase, prefix: RecordKey.stream(id)) { key, value in
            guard key.count == 16, let serial = RecordKey.decode(key.suffix(8)), let producer = ProducerRecord(decoding: value) else { return }
            state.producers[StreamKey(producer.id)] = (serial, producer.state)
        }
        return state
    }
}
