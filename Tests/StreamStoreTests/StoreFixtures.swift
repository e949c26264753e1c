import DurableStreams
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
@testable import StreamStore

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Double

    init(_ start: Double = 1_700_000_000) { value = start }

    var now: Double { lock.withLock { value } }
    func advance(by seconds: Double) { lock.withLock { value += seconds } }
}

/// Where a wait's outcome lands once its future completes.
final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Result<StoreWait.Outcome, any Error>?

    func set(_ result: Result<StoreWait.Outcome, any Error>) {
        lock.withLock {
            precondition(stored == nil, "a wait completed twice")
            stored = result
        }
    }

    var result: Result<StoreWait.Outcome, any Error>? { lock.withLock { stored } }
}

/// A store the contract suite runs against. Every test that states what a store must do takes
/// one of these as an argument, so each backend passes the same assertions.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case file

    static let all = allCases
    var testDescription: String { rawValue }
}

/// A store under test, driven synchronously with an injected clock: no sleeps, no timing.
///
/// The memory store runs on an `EmbeddedEventLoop`, all on the test's own thread. The file store
/// works on its own I/O threads, so it answers on a real event loop, and lives in a temporary
/// directory removed when the harness goes away.
final class StoreHarness {
    private(set) var loop: any EventLoop
    let clock: ManualClock
    private(set) var store: any StreamStore
    private let embedded: EmbeddedEventLoop?
    /// The file store's directory and options.
    let fileOptions: FileStoreOptions?

    /// One event loop for every file-store test: the store completes futures from its own threads.
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(_ backend: StoreBackend = .memory, clock: ManualClock = ManualClock(),
         configure: (inout FileStoreOptions) -> Void = { _ in }) throws {
        self.clock = clock
        switch backend {
        case .memory:
            let loop = EmbeddedEventLoop()
            self.loop = loop
            self.embedded = loop
            self.store = MemoryStore(clock: { clock.now })
            self.fileOptions = nil
        case .file:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-store-\(UUID().uuidString)").path
            var options = FileStoreOptions(directory: directory)
            // Small files and a small in-memory tail, so tests cross segments and read from disk.
            options.segmentBytes = 4096
            options.hotTailBytes = 64
            configure(&options)
            self.loop = Self.group.next()
            self.embedded = nil
            self.fileOptions = options
            self.store = try FileStore.open(options, clock: { clock.now })
        }
    }

    deinit {
        shutDownStore()
        if let directory = fileOptions?.directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    var fileStore: FileStore? { store as? FileStore }

    /// Shuts the store down as a server would at exit (finishing its commits).
    func shutDownStore() {
        guard let store = fileStore else { return }
        // Not through Swift concurrency: tests run on its few threads, and blocking one of them
        // while a task needs another could stall the run.
        let done = DispatchSemaphore(value: 0)
        store.shutdown { done.signal() }
        done.wait()
    }

    /// Closes the file store and opens its directory again, as a restarted server would.
    @discardableResult
    func reopen() throws -> RecoveryReport {
        shutDownStore()
        let clock = self.clock
        let reopened = try FileStore.open(fileOptions!, clock: { clock.now })
        store = reopened
        return reopened.recovery
    }

    /// Runs the store's expiry sweep; how many streams it removed.
    func sweep() throws -> Int {
        try store.sweepExpired(on: loop).wait()
    }

    /// Lets tasks already queued on the loop (waking waiters) run.
    func settle() {
        if let embedded {
            embedded.run()
        } else {
            try? loop.submit {}.wait()
        }
    }

    // MARK: Commands

    static func body(_ bytes: [UInt8], type: String?, allowEmptyArray: Bool) -> Body {
        Body.framing(ByteBuffer(bytes: bytes), as: type.flatMap { ContentType($0) }, allowEmptyArray: allowEmptyArray)
    }

    static func createCommand(type: String = "text/plain", lifetime: StreamLifetime = .unlimited, closed: Bool = false,
                              body: [UInt8] = []) -> CreateCommand {
        CreateCommand(contentType: ContentType(type)!, lifetime: lifetime, closed: closed,
                      body: self.body(body, type: type, allowEmptyArray: true))
    }

    static func appendCommand(_ bytes: [UInt8], type: String? = "text/plain", seq: String? = nil, closed: Bool = false,
                              producer: ProducerClaim? = nil) -> AppendCommand {
        AppendCommand(contentType: type.flatMap { ContentType($0) }, seq: seq, closed: closed,
                      producer: producer, body: body(bytes, type: type, allowEmptyArray: false))
    }

    // MARK: Operations

    @discardableResult
    func create(_ path: String = "s", type: String = "text/plain", lifetime: StreamLifetime = .unlimited,
                closed: Bool = false, body: String = "") throws -> CreateResult {
        try store.create(path, Self.createCommand(type: type, lifetime: lifetime, closed: closed, body: Array(body.utf8)),
                         on: loop).wait()
    }

    func createError(_ path: String = "s", type: String = "text/plain", lifetime: StreamLifetime = .unlimited,
                     closed: Bool = false, body: String = "") -> ProtocolError? {
        failure(of: store.create(path, Self.createCommand(type: type, lifetime: lifetime, closed: closed, body: Array(body.utf8)), on: loop))
    }

    @discardableResult
    func append(_ path: String, _ body: String, type: String? = "text/plain", seq: String? = nil,
                closed: Bool = false, producer: ProducerClaim? = nil) throws -> AppendResult {
        try appendBytes(path, Array(body.utf8), type: type, seq: seq, closed: closed, producer: producer)
    }

    /// Appends to the default stream "s".
    @discardableResult
    func append(_ body: String, type: String? = "text/plain", seq: String? = nil,
                closed: Bool = false, producer: ProducerClaim? = nil) throws -> AppendResult {
        try append("s", body, type: type, seq: seq, closed: closed, producer: producer)
    }

    @discardableResult
    func appendBytes(_ path: String, _ body: [UInt8], type: String? = "text/plain", seq: String? = nil,
                     closed: Bool = false, producer: ProducerClaim? = nil) throws -> AppendResult {
        try store.append(path, Self.appendCommand(body, type: type, seq: seq, closed: closed, producer: producer), on: loop).wait()
    }

    /// Appends bytes to the default stream "s".
    @discardableResult
    func appendBytes(_ body: [UInt8], type: String? = "text/plain", seq: String? = nil,
                     closed: Bool = false, producer: ProducerClaim? = nil) throws -> AppendResult {
        try appendBytes("s", body, type: type, seq: seq, closed: closed, producer: producer)
    }

    func appendError(_ path: String, _ body: String, type: String? = "text/plain", seq: String? = nil,
                     closed: Bool = false, producer: ProducerClaim? = nil) -> ProtocolError? {
        failure(of: store.append(path, Self.appendCommand(Array(body.utf8), type: type, seq: seq, closed: closed, producer: producer), on: loop))
    }

    /// The rejection of an append to the default stream "s".
    func appendError(_ body: String, type: String? = "text/plain", seq: String? = nil,
                     closed: Bool = false, producer: ProducerClaim? = nil) -> ProtocolError? {
        appendError("s", body, type: type, seq: seq, closed: closed, producer: producer)
    }

    /// Closes without data.
    @discardableResult
    func close(_ path: String = "s", producer: ProducerClaim? = nil) throws -> AppendResult {
        try appendBytes(path, [], type: nil, closed: true, producer: producer)
    }

    func read(_ path: String = "s", from start: ReadStart = .beginning, maxBytes: Int = 1 << 30, touch: Bool = true) throws -> ReadResult {
        try store.read(path, from: start, maxBytes: maxBytes, touch: touch, on: loop).wait()
    }

    func readError(_ path: String = "s", from start: ReadStart = .beginning, maxBytes: Int = 1 << 30, touch: Bool = true) -> ProtocolError? {
        failure(of: store.read(path, from: start, maxBytes: maxBytes, touch: touch, on: loop))
    }

    func info(_ path: String = "s") throws -> StreamInfo {
        try store.info(path, on: loop).wait()
    }

    func infoError(_ path: String = "s") -> ProtocolError? {
        failure(of: store.info(path, on: loop))
    }

    func delete(_ path: String = "s") throws {
        try store.delete(path, on: loop).wait()
    }

    func deleteError(_ path: String = "s") -> ProtocolError? {
        failure(of: store.delete(path, on: loop))
    }

    /// Every stored byte, read in one go without renewing the TTL.
    func contents(_ path: String = "s") throws -> [UInt8] {
        let result = try read(path, maxBytes: Int(UInt32.max), touch: false)
        return result.chunks.flatMap { Array($0.readableBytesView) }
    }

    func text(_ path: String = "s") throws -> String {
        String(decoding: try contents(path), as: UTF8.self)
    }

    // MARK: Forks

    /// A fork `PUT`: `type` is the Content-Type sent (`nil` takes the source's, §4.2). The body
    /// is framed by the type the fork will have, as the server frames it.
    static func forkCommand(from source: String, offset: StreamOffset?, subOffset: UInt64, type: String?,
                            framedAs framing: String, lifetime: StreamLifetime, closed: Bool, body: [UInt8]) -> CreateCommand {
        CreateCommand(contentType: type.flatMap { ContentType($0) }, lifetime: lifetime, closed: closed,
                      body: self.body(body, type: framing, allowEmptyArray: true),
                      fork: ForkCommand(source: source, offset: offset, subOffset: subOffset))
    }

    /// The type a fork's body is framed as: the one sent, else the source's (bytes if it has none).
    private func forkFraming(_ source: String, _ type: String?) -> String {
        type ?? (try? info(source).contentType.headerValue) ?? "application/octet-stream"
    }

    @discardableResult
    func fork(_ path: String, from source: String = "s", offset: StreamOffset? = nil, subOffset: UInt64 = 0,
              type: String? = nil, lifetime: StreamLifetime = .unlimited, closed: Bool = false, body: String = "") throws -> CreateResult {
        let command = Self.forkCommand(from: source, offset: offset, subOffset: subOffset, type: type,
                                       framedAs: forkFraming(source, type), lifetime: lifetime, closed: closed, body: Array(body.utf8))
        return try store.create(path, command, on: loop).wait()
    }

    func forkError(_ path: String, from source: String = "s", offset: StreamOffset? = nil, subOffset: UInt64 = 0,
                   type: String? = nil, lifetime: StreamLifetime = .unlimited, closed: Bool = false, body: String = "") -> ProtocolError? {
        let command = Self.forkCommand(from: source, offset: offset, subOffset: subOffset, type: type,
                                       framedAs: forkFraming(source, type), lifetime: lifetime, closed: closed, body: Array(body.utf8))
        return failure(of: store.create(path, command, on: loop))
    }

    /// A JSON stream as a client receives it whole: one array.
    func json(_ path: String = "s", from start: ReadStart = .beginning) throws -> String {
        try read(path, from: start, touch: false).body.map { String(buffer: $0) }.joined()
    }

    /// Reads a stream page by page from the beginning (offset -1), `maxBytes` at a time, as a
    /// client catching up would: the stored bytes of every page, in order, and each page's range.
    func readAll(_ path: String = "s", maxBytes: Int) throws -> (bytes: [UInt8], pages: [Range<UInt64>]) {
        var bytes: [UInt8] = []
        var pages: [Range<UInt64>] = []
        var start = ReadStart.beginning
        while pages.count < 1_000_000 {
            let page = try read(path, from: start, maxBytes: maxBytes, touch: false)
            bytes += page.bytes
            pages.append(page.start.position..<page.end.position)
            if page.upToDate { break }
            guard !page.isEmpty else {
                Issue.record("an empty page short of the tail at \(page.start)")
                break
            }
            start = .offset(page.end)
        }
        return (bytes, pages)
    }

    /// Lets the file store's commit queue run past everything queued so far: a scratch stream
    /// created and deleted commits after it. A cascade removes one level of a chain per commit
    /// (§4.2), so it may take a few. The memory store does everything at once.
    func drainCommits() throws {
        guard fileStore != nil else { return }
        try create("__drain__")
        try delete("__drain__")
    }

    /// Whether `condition` holds, draining the commit queue between tries (at most `rounds`).
    func eventually(rounds: Int = 8, _ condition: () throws -> Bool) throws -> Bool {
        for _ in 0..<rounds {
            if try condition() { return true }
            try drainCommits()
        }
        return try condition()
    }

    // MARK: Waits

    func wait(_ path: String = "s", after offset: StreamOffset) -> (StoreWait, OutcomeBox) {
        let wait = store.waitForChange(path, after: offset, on: loop)
        let box = OutcomeBox()
        wait.future.whenComplete { box.set($0) }
        return (wait, box)
    }

    /// The wait's outcome, or `nil` while it is still pending.
    func outcome(_ box: OutcomeBox) -> StoreWait.Outcome? {
        settle()
        switch box.result {
        case .success(let outcome): return outcome
        case .failure, nil: return nil
        }
    }

    private func failure<T: Sendable>(of future: EventLoopFuture<T>) -> ProtocolError? {
        do {
            _ = try future.wait()
            return nil
        } catch {
            return error as? ProtocolError
        }
    }
}

extension ProtocolError {
    /// The value of a header the rejection carries.
    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

extension ReadResult {
    var bytes: [UInt8] { chunks.flatMap { Array($0.readableBytesView) } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

func offset(_ position: UInt64) -> StreamOffset { StreamOffset(position: position) }
