import DurableStreams
import NIOCore

/// Where streams live. Every operation answers on the caller's event loop through a future, so
/// the in-memory store can answer at once while a file-backed store runs its I/O on a thread
/// pool: the HTTP layer never blocks and never changes when the backing store does.
///
/// Operations fail with `ProtocolError`, carrying the status and headers the protocol demands.
public protocol StreamStore: AnyObject, Sendable {
    /// Creates a stream, or confirms an identical one exists (§5.1).
    func create(_ path: String, _ command: CreateCommand, on loop: any EventLoop) -> EventLoopFuture<CreateResult>

    /// Appends and/or closes (§5.2, §5.2.1, §5.3). Validation and the append happen atomically
    /// per stream, which also serialises each (stream, producer) pair.
    func append(_ path: String, _ command: AppendCommand, on loop: any EventLoop) -> EventLoopFuture<AppendResult>

    /// Reads up to `maxBytes` from `start` (for JSON streams: whole messages, at least one).
    /// `touch` renews a sliding TTL.
    func read(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>

    /// `read` for a response that will be sent as it is (not compressed, not re-encoded): a
    /// store that keeps bytes in files may answer large ranges with `ReadResult.files`, which
    /// the caller must write with `wireBody` and then close.
    func readForSending(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>

    /// Metadata without renewing the TTL (HEAD).
    func info(_ path: String, on loop: any EventLoop) -> EventLoopFuture<StreamInfo>

    /// Deletes a stream; waiters on it wake up.
    func delete(_ path: String, on loop: any EventLoop) -> EventLoopFuture<Void>

    /// Completes once the stream's tail moves past `offset`, the stream closes or goes away,
    /// or the wait is cancelled. Completes at once if that is already so.
    func waitForChange(_ path: String, after offset: StreamOffset, on loop: any EventLoop) -> StoreWait

    /// Stops waiting; the wait's future completes with `.cancelled` (no promise is leaked).
    func cancel(_ wait: StoreWait)

    /// Removes streams whose lifetime has ended and wakes their waiters; the future gives how
    /// many were removed. Expiry is enforced on every access anyway: the server calls this now
    /// and then so that streams nobody touches again do not keep their storage.
    func sweepExpired(on loop: any EventLoop) -> EventLoopFuture<Int>

    /// Number of live streams (for metrics).
    var streamCount: Int { get }

    /// The names of the live streams (not soft-deleted), from memory: subscriptions link the
    /// existing streams a new pattern matches (§6.2). May include streams whose lifetime has
    /// just ended; reading them then fails as usual.
    var streamNames: [String] { get }

    /// Finishes what was accepted and releases files; writes are refused from the start of the
    /// call. Called once the servers using the store have stopped.
    func shutdown() async

    /// Storage figures for metrics; `nil` for a store that has none (memory).
    var statistics: StoreStatistics? { get }
}

extension StreamStore {
    public func readForSending(_ path: String, from start: ReadStart, maxBytes: Int, touch: Bool, on loop: any EventLoop)
        -> EventLoopFuture<ReadResult>
    {
        read(path, from: start, maxBytes: maxBytes, touch: touch, on: loop)
    }

    public func shutdown() async {}
    public var statistics: StoreStatistics? { nil }
}

/// How a durable store is doing, for metrics. Counts only grow.
public struct StoreStatistics: Sendable, Equatable {
    /// Batches committed (each one data sync and one LMDB transaction under `--fsync batch`).
    public var commits = 0
    /// Creates and appends those batches made durable.
    public var committedWrites = 0
    /// Time spent committing (writing, syncing, LMDB), in seconds.
    public var commitSeconds = 0.0
    /// Batches that failed (disk full, I/O error); their writers got a 5xx.
    public var failedCommits = 0
    /// Reads answered from the in-memory tail, from the block cache of recent history, and from
    /// segment files.
    public var memoryReads = 0
    public var cachedReads = 0
    public var diskReads = 0
    /// Writes waiting for the committer now.
    public var queuedWrites = 0
    public var openFiles = 0
    public var hotTailBytes = 0
    public var blockCacheBytes = 0

    public init() {}
}

/// What `PUT` asks the store to do.
public struct CreateCommand: Sendable {
    /// `nil` only for a fork that takes its source's type (§4.2).
    public var contentType: ContentType?
    /// For a fork, the lifetime asked for; `.unlimited` takes the source's (§4.2's table).
    public var lifetime: StreamLifetime
    public var closed: Bool
    /// Initial content, split into messages (one for byte streams; JSON messages for JSON mode).
    public var body: Body
    /// The stream to fork and where, for a fork.
    public var fork: ForkCommand?

    public init(contentType: ContentType?, lifetime: StreamLifetime, closed: Bool, body: Body, fork: ForkCommand? = nil) {
        self.contentType = contentType
        self.lifetime = lifetime
        self.closed = closed
        self.body = body
        self.fork = fork
    }
}

/// Which stream a fork inherits from and where it diverges (§4.2).
public struct ForkCommand: Sendable, Hashable {
    /// The source's name in the store (the same form as every other path the store is given).
    public var source: String
    /// The divergence point; `nil` = the source's tail when the fork is made.
    public var offset: StreamOffset?
    /// Bytes (JSON: messages) past `offset` the fork also inherits.
    public var subOffset: UInt64

    public init(source: String, offset: StreamOffset?, subOffset: UInt64) {
        self.source = source
        self.offset = offset
        self.subOffset = subOffset
    }
}

/// How an existing fork was made, kept to tell a repeated `PUT` (200) from a different one (409).
public struct ForkOrigin: Sendable, Hashable {
    public var source: String
    /// The fork offset as resolved when the fork was made (the source's tail if none was sent).
    public var anchor: StreamOffset
    public var subOffset: UInt64

    public init(source: String, anchor: StreamOffset, subOffset: UInt64) {
        self.source = source
        self.anchor = anchor
        self.subOffset = subOffset
    }

    /// Whether `command` asks for this fork: same source, offset (an omitted offset is the
    /// source's tail now, `sourceTail`) and sub-offset.
    func matches(_ command: ForkCommand, sourceTail: StreamOffset?) -> Bool {
        source == command.source && subOffset == command.subOffset && anchor == (command.offset ?? sourceTail)
    }
}

extension CreateCommand {
    /// Whether an existing stream is the one this `PUT` describes, so that repeating it answers
    /// 200 rather than 409 (§5.1): same content type, lifetime and closure, and for a fork the
    /// same source and divergence point. `source` is the fork source's tail and lifetime now,
    /// when the command is a fork and the source is still there.
    func matches(contentType: ContentType, lifetime: StreamLifetime, closed: Bool, fork: ForkOrigin?,
                 source: (tail: StreamOffset, lifetime: StreamLifetime)? = nil) -> Bool {
        guard self.contentType.map({ $0 == contentType }) ?? (self.fork != nil), self.closed == closed else { return false }
        switch (self.fork, fork) {
        case (nil, nil):
            return lifetime.matches(self.lifetime)
        case (let asked?, let made?):
            guard made.matches(asked, sourceTail: source?.tail) else { return false }
            let wanted = source.map { StreamLifetime.forFork(requested: self.lifetime, source: $0.lifetime) } ?? self.lifetime
            return lifetime.matches(wanted)
        default:
            return false
        }
    }
}

/// The statuses every store gives for forks and soft-deleted streams, worded once.
public enum ForkErrors {
    /// Any direct operation on a stream deleted while forks still use its data (§4.2).
    public static let gone = ProtocolError(.gone, "stream was deleted; its forks still use its data")
    /// `PUT` on a soft-deleted stream's name.
    public static let nameTaken = ProtocolError(.conflict, "a deleted stream's name stays taken while forks use its data")
    public static let sourceNotFound = ProtocolError(.notFound, "fork source not found")
    public static let sourceGone = ProtocolError(.conflict, "fork source was deleted")
    public static let typeMismatch = ProtocolError(.conflict, "Content-Type differs from the fork source's")
}

/// What `POST` asks the store to do.
public struct AppendCommand: Sendable {
    /// `nil` for a close without data.
    public var contentType: ContentType?
    public var seq: String?
    public var closed: Bool
    public var producer: ProducerClaim?
    public var body: Body

    public init(contentType: ContentType?, seq: String?, closed: Bool, producer: ProducerClaim?, body: Body) {
        self.contentType = contentType
        self.seq = seq
        self.closed = closed
        self.producer = producer
        self.body = body
    }
}

/// A request body and the messages framed in it.
///
/// Framing is computed by the caller, off any lock; a framing error (invalid JSON) is carried
/// rather than thrown so the store can report the protocol's higher-precedence errors
/// (closed stream, content-type mismatch) first.
public struct Body: Sendable {
    public var bytes: ByteBuffer
    public var messages: Result<[Range<Int>], ProtocolError>

    public static let empty = Body(bytes: ByteBuffer(), messages: .success([]))

    public init(bytes: ByteBuffer, messages: Result<[Range<Int>], ProtocolError>) {
        self.bytes = bytes
        self.messages = messages
    }

    /// Frames `bytes` for a stream of `contentType`: JSON messages for JSON mode (`[]` is an
    /// empty list only when `allowEmptyArray`), otherwise the whole body as one record.
    public static func framing(_ bytes: ByteBuffer, as contentType: ContentType?, allowEmptyArray: Bool) -> Body {
        guard bytes.readableBytes > 0 else { return Body(bytes: bytes, messages: .success([])) }
        guard let contentType, contentType.isJSON else {
            return Body(bytes: bytes, messages: .success([0..<bytes.readableBytes]))
        }
        let result: Result<[Range<Int>], JSONMessages.Failure> = bytes.withUnsafeReadableBytes { raw in
            Result { () throws(JSONMessages.Failure) in try JSONMessages.split(raw) }
        }
        switch result {
        case .success(let ranges):
            return Body(bytes: bytes, messages: .success(ranges))
        case .failure(.emptyArray):
            return Body(bytes: bytes, messages: allowEmptyArray
                ? .success([]) : .failure(ProtocolError(.badRequest, "empty JSON array: nothing to append")))
        case .failure(.invalid(let position, let message)):
            return Body(bytes: bytes, messages: .failure(ProtocolError(.badRequest, "invalid JSON at byte \(position): \(message)")))
        }
    }
}

/// A stream's metadata.
public struct StreamInfo: Sendable, Hashable {
    /// Internal identity, unique across deletes and re-creations (part of ETags).
    public var id: String
    public var contentType: ContentType
    public var lifetime: StreamLifetime
    public var tail: StreamOffset
    public var closed: Bool
    /// When the stream expires, in seconds since 1970, if it does.
    public var expiresAt: Double?

    public init(id: String, contentType: ContentType, lifetime: StreamLifetime, tail: StreamOffset, closed: Bool, expiresAt: Double?) {
        self.id = id
        self.contentType = contentType
        self.lifetime = lifetime
        self.tail = tail
        self.closed = closed
        self.expiresAt = expiresAt
    }
}

/// The outcome of a `PUT`.
public struct CreateResult: Sendable {
    /// `false` when an identical stream already existed (200 rather than 201).
    public var created: Bool
    public var info: StreamInfo
}

/// The outcome of a `POST` that succeeded.
public struct AppendResult: Sendable {
    public var tail: StreamOffset
    public var closed: Bool
    /// The producer's state after the request, when producer headers were sent.
    public var producer: ProducerState?
    /// `true` when the request was a retry of something already applied (no data added).
    public var duplicate: Bool
}

/// Bytes read from a stream.
public struct ReadResult: Sendable {
    public var info: StreamInfo
    public var start: StreamOffset
    public var end: StreamOffset
    /// The bytes of `[start, end)` in the stores' shared framing: a byte stream's bytes as they
    /// are; for a JSON stream, each message followed by a comma. Only stores see it; clients get
    /// `body`, so a store may change how it frames without the servers noticing.
    var chunks: [ByteBuffer]

    init(info: StreamInfo, start: StreamOffset, end: StreamOffset, chunks: [ByteBuffer]) {
        self.info = info
        self.start = start
        self.end = end
        self.chunks = chunks
    }

    /// The read reached the tail as it was when the read happened.
    public var upToDate: Bool { end == info.tail }
    /// The reader has reached the end of a closed stream: EOF.
    public var reachedClosedEnd: Bool { info.closed && end == info.tail }
    /// The read returned no data (it started at the tail).
    public var isEmpty: Bool { end == start }
    /// How many stored bytes the read covers.
    var byteCount: Int { chunks.reduce(0) { $0 + $1.readableBytes } }

    /// File ranges to send instead of `chunks` (`readForSending` only); `nil` when the bytes are
    /// in `chunks`.
    public internal(set) var files: ReadFiles?

    /// What a client receives for this read, in order and without copying the stored bytes: the
    /// stream's bytes, or for a JSON stream one JSON array of its messages (`[]` when empty).
    /// Not for results with `files`: use `wireBody`.
    public var body: [ByteBuffer] {
        precondition(files == nil, "a read answered with files is sent with wireBody")
        guard info.contentType.isJSON else { return chunks.filter { $0.readableBytes > 0 } }
        var parts = chunks.filter { $0.readableBytes > 0 }
        guard var last = parts.popLast() else { return [Self.emptyArray] }
        last.moveWriterIndex(to: last.writerIndex - 1)  // the last message's separator
        if last.readableBytes > 0 { parts.append(last) }
        return [Self.openBracket] + parts + [Self.closeBracket]
    }

    /// `body` as parts to write, file ranges included.
    public var wireBody: [IOData] {
        guard let files else { return body.map { .byteBuffer($0) } }
        guard info.contentType.isJSON else { return files.regions.map { .fileRegion($0) } }
        var regions = files.regions
        guard let last = regions.popLast() else { return [.byteBuffer(Self.emptyArray)] }
        // The last message's separator stays in the file.
        let trimmed = FileRegion(fileHandle: last.fileHandle, readerIndex: last.readerIndex, endIndex: last.endIndex - 1)
        if trimmed.readableBytes > 0 { regions.append(trimmed) }
        return [.byteBuffer(Self.openBracket)] + regions.map { .fileRegion($0) } + [.byteBuffer(Self.closeBracket)]
    }

    private static let openBracket = ByteBuffer(string: "[")
    private static let closeBracket = ByteBuffer(string: "]")
    private static let emptyArray = ByteBuffer(string: "[]")
}

/// A pending `waitForChange`.
public struct StoreWait: Sendable {
    public enum Outcome: Sendable, Hashable {
        /// The tail moved, the stream closed, or it went away: read again.
        case changed
        case cancelled
    }

    public let path: String
    public let id: UInt64
    public let future: EventLoopFuture<Outcome>

    public init(path: String, id: UInt64, future: EventLoopFuture<Outcome>) {
        self.path = path
        self.id = id
        self.future = future
    }
}
