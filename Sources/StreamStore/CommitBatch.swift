import DurableStreams
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One thing the file store's committer does, in queue order.
struct CommitJob {
    enum Work {
        /// A new stream: its directory, its first bytes.
        case create(FramedAppend)
        case append(AppendWrite)
        /// Remove the stream's metadata, then its files. Carries the stream, to be put back if
        /// the commit fails, and the source whose reference it gives back once it has committed.
        case delete(removed: FileStream?, source: SourceLink?)
        /// Write the record only (a sliding TTL's access time).
        case touch
        /// Write the record that says the stream is soft-deleted.
        case softDelete
        /// Nothing to write: answers a retry once everything queued before it has committed.
        case barrier

        /// Work that depends on the stream's uncommitted state (so fails when an earlier commit
        /// of the stream failed).
        var isStreamWork: Bool {
            if case .delete = self { return false }
            return true
        }
    }

    /// Who waits for the job.
    enum Completion {
        case none
        case create(EventLoopPromise<CreateResult>, CreateResult)
        case append(EventLoopPromise<AppendResult>, AppendResult)
        case void(EventLoopPromise<Void>)
        /// A rejection decided on state that was not durable yet.
        case reject(EventLoopPromise<AppendResult>, ProtocolError)
        case rejectCreate(EventLoopPromise<CreateResult>, ProtocolError)

        func succeed() {
            switch self {
            case .none: break
            case .create(let promise, let result): promise.succeed(result)
            case .append(let promise, let result): promise.succeed(result)
            case .void(let promise): promise.succeed(())
            case .reject(let promise, let error): promise.fail(error)
            case .rejectCreate(let promise, let error): promise.fail(error)
            }
        }

        func fail(_ error: any Error) {
            switch self {
            case .none: break
            case .create(let promise, _): promise.fail(error)
            case .append(let promise, _): promise.fail(error)
            case .void(let promise): promise.fail(error)
            case .reject(let promise, _): promise.fail(error)
            case .rejectCreate(let promise, _): promise.fail(error)
            }
        }
    }

    let stream: UInt64
    let key: StreamKey
    let work: Work
    /// The stream's record after this job, for LMDB.
    var record: StreamRecord? = nil
    let completion: Completion

    /// Whether the job writes data or a stream's state (so a failure must roll the stream back).
    var changesData: Bool {
        switch work {
        case .create, .append: return true
        case .delete, .touch, .barrier, .softDelete: return false
        }
    }
}

/// A fork's source as the file store finds it: by name, checked by id.
struct SourceLink: Sendable, Hashable {
    let key: StreamKey
    let id: UInt64
}

/// The bytes and state one accepted append commits.
struct AppendWrite {
    let framed: FramedAppend
    /// The segment the bytes go to.
    let segmentStart: UInt64
    /// The segment file is new (its directory entry must be synced).
    let newSegment: Bool
    /// How many message ends the index held before (where this append's ends go).
    let indexPosition: UInt64
    let producer: (serial: UInt64, record: ProducerRecord)?
    let closes: Bool
    let undo: Undo

    /// The stream's state before the append, to go back to if it never commits.
    struct Undo {
        let record: StreamRecord
        /// The producer's slot before, `nil` inside when it was new.
        let producer: (key: StreamKey, slot: (serial: UInt64, state: ProducerState)?)?
    }
}

/// Commits a batch of jobs: file writes, then syncs (per the fsync policy), then one LMDB
/// transaction; a delete removes its files only after that transaction. Throws on the first
/// failure, before anything was acknowledged; what was written is beyond the committed ends
/// and is overwritten by the next append or cut at the next start.
struct CommitBatch {
    let jobs: [CommitJob]
    let files: StreamFiles
    let lmdb: LMDBEnvironment
    let fsync: FsyncPolicy

    func run() throws {
        var written: [FileHandleCache.Key: String] = [:]
        var newEntries: Set<String> = []
        for job in jobs {
            switch job.work {
            case .create(let framed):
                try files.createDirectory(job.stream, sync: false)
                newEntries.insert(files.streamsDirectory)
                if framed.bytes.readableBytes > 0 {
                    // A fork's first segment starts at its fork point.
                    try write(framed, stream: job.stream, segmentStart: framed.start, indexPosition: 0, into: &written)
                    newEntries.insert(files.directory(job.stream))
                }
            case .append(let append):
                try write(append.framed, stream: job.stream, segmentStart: append.segmentStart,
                          indexPosition: append.indexPosition, into: &written)
                if append.newSegment || (append.indexPosition == 0 && !append.framed.ends.isEmpty) {
                    newEntries.insert(files.directory(job.stream))
                }
            case .delete, .touch, .barrier, .softDelete:
                break
            }
        }
        if fsync != .never {
            try syncAll(Array(written), directories: Array(newEntries))
        }
        if jobs.contains(where: { $0.record != nil || $0.work.isDelete }) {
            try lmdb.write { transaction in
                for job in jobs { try record(job, in: transaction) }
            }
        }
        for job in jobs where job.work.isDelete {
            files.removeDirectory(job.stream)
        }
    }

    /// Syncs every file the batch wrote, concurrently when there are several: a disk flushes
    /// parallel requests in about the time of one, and the whole batch waits for the slowest.
    private func syncAll(_ written: [(key: FileHandleCache.Key, value: String)], directories: [String]) throws {
        let count = written.count + directories.count
        guard count > 1 else {
            for (key, path) in written { try files.sync(key, path: path) }
            for directory in directories { try files.syncDirectory(directory) }
            return
        }
        let failures = NIOLockedValueBox<[any Error]>([])
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do {
                if index < written.count {
                    try files.sync(written[index].key, path: written[index].value)
                } else {
                    try files.syncDirectory(directories[index - written.count])
                }
            } catch {
                failures.withLockedValue { $0.append(error) }
            }
        }
        if let failure = failures.withLockedValue({ $0.first }) { throw failure }
    }

    private func write(_ framed: FramedAppend, stream: UInt64, segmentStart: UInt64, indexPosition: UInt64,
                       into written: inout [FileHandleCache.Key: String]) throws {
        if framed.bytes.readableBytes > 0 {
            let key = FileHandleCache.Key(stream: stream, file: segmentStart)
            let path = files.segmentPath(stream, start: segmentStart)
            try files.write(framed.bytes, to: key, path: path, at: framed.start - segmentStart)
            written[key] = path
        }
        if !framed.ends.isEmpty {
            var index = ByteBuffer()
            index.reserveCapacity(framed.ends.count * 8)
            for end in framed.ends { index.writeInteger(end, endianness: .little) }
            let key = FileHandleCache.Key(stream: stream, file: FileHandleCache.Key.index)
            let path = files.indexPath(stream)
            try files.write(index, to: key, path: path, at: indexPosition * 8)
            written[key] = path
        }
    }

    private func record(_ job: CommitJob, in transaction: LMDBWriteTransaction) throws {
        switch job.work {
        case .delete:
            try transaction.delete(FileStoreRecovery.streamsDatabase, RecordKey.stream(job.stream))
            try transaction.deleteAll(FileStoreRecovery.producersDatabase, prefix: RecordKey.stream(job.stream))
            return
        case .create:
            try transaction.put(FileStoreRecovery.storeDatabase, RecordKey.nextStreamID, RecordKey.bigEndian(job.stream + 1))
        case .append(let append):
            if let (serial, producer) = append.producer {
                try transaction.put(FileStoreRecovery.producersDatabase,
                                    RecordKey.producer(stream: job.stream, serial: serial), producer.encoded())
            }
        case .touch, .barrier, .softDelete:
            break
        }
        if let record = job.record {
            try transaction.put(FileStoreRecovery.streamsDatabase, RecordKey.stream(job.stream), record.encoded())
        }
    }
}

extension CommitJob.Work {
    var isDelete: Bool {
        if case .delete = self { return true }
        return false
    }
}
