import CLMDB
import Foundation

// A small, memory-safe layer over the system LMDB for the file-backed store.
//
// LMDB hands out pointers into its memory map, which stay valid only until the transaction that
// produced them ends. Everything here copies bytes out before returning, and transactions are
// closure-scoped objects that refuse to work once their closure has returned, so no caller can
// keep a pointer into the map. Calls block (fsync, the writer lock): callers run them on a thread
// pool, never on an event loop.

/// An LMDB failure: the mdb return code and mdb_strerror text, plus what was being done.
struct LMDBError: Error, CustomStringConvertible {
    /// LMDB's own code (`MDB_MAP_FULL`, ...) or an errno value (`ENOSPC`, `EINVAL`, ...).
    let code: Int32
    /// What was being done, for the log line: "put in database 'streams'".
    let operation: String

    init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The memory map is full (`MDB_MAP_FULL`). `LMDBEnvironment.write` grows the map once
    /// before reporting this.
    var isMapFull: Bool { code == MDB_MAP_FULL }

    /// The disk is full (`ENOSPC`).
    var isNoSpace: Bool { code == ENOSPC }

    var description: String {
        // mdb_strerror knows LMDB's codes and falls back to strerror for errno values.
        "LMDB: \(operation) failed: \(String(cString: mdb_strerror(code))) (\(code))"
    }
}

/// One LMDB environment (a directory holding data.mdb and lock.mdb), opened once per process.
///
/// Transactions may run on any thread and side by side (LMDB serialises writers itself). The one
/// thing LMDB leaves to its caller is resizing the map: `mdb_env_set_mapsize` unmaps and remaps
/// the file without checking whether a transaction still points into the old mapping. So every
/// transaction passes a gate here, and a resize (or `close`) waits until none is running and holds
/// new ones back meanwhile. A transaction started inside another one's closure on the same thread
/// passes straight through, since waiting there could wait on itself.
final class LMDBEnvironment: @unchecked Sendable {
    /// The default map: 64 GiB of address space. The map is sparse, so this costs nothing until
    /// used; `write` doubles it if it ever fills.
    static let defaultMapSize = 1 << 36

    // Set in init and never changed; the handle is only used by a caller that passed the gate.
    private let env: OpaquePointer
    fileprivate let databases: [String: MDB_dbi]
    /// The longest key LMDB accepts (511 bytes in the Debian build).
    let maxKeySize: Int

    // The gate. All of the following is guarded by `condition`. A resize or close runs with it
    // held, so no transaction can start while one is under way.
    private let condition = NSCondition()
    /// Threads inside a transaction (or `sync`), counted once however deeply they nest.
    private var active = 0
    /// Resizes and closes waiting for `active` to reach zero; new transactions wait behind them,
    /// so a steady stream of readers cannot starve a resize.
    private var exclusiveWaiting = 0
    /// The current map size, read when a transaction starts so that a map-full failure knows
    /// which size was too small (and whether someone else has grown it since).
    private var mapSize: Int
    /// Set when the environment is closed, or when a resize failed and left no usable mapping:
    /// every later transaction throws this instead of touching the handle.
    private var unusable: LMDBError?
    /// `close` has run (as opposed to a failed resize, which also makes the environment unusable
    /// but still needs `mdb_env_close` to release the file and lock).
    private var closed = false

    /// Per thread: how deeply it is nested in this environment's transactions, and whether one of
    /// them is a write (see `threadState`).
    private let depthKey: pthread_key_t

    /// Opens (creating the directory if missing, mode 0700) with the given named databases created if absent.
    /// `mapSize` bytes of address space (default 1 << 36; it is sparse). `durable: false` opens with MDB_NOSYNC
    /// (commits reach the OS but are not fsynced) — used by `--fsync never`. Uses MDB_NOTLS so read
    /// transactions may be used from any thread-pool thread; maxReaders 512.
    init(
        path: String, databases names: [String], mapSize: Int = LMDBEnvironment.defaultMapSize,
        durable: Bool = true
    ) throws(LMDBError) {
        guard mapSize > 0 else {
            throw LMDBError(code: EINVAL, operation: "opening \(path) with a map size of \(mapSize) bytes")
        }
        try Self.makeDirectory(path)

        var created: OpaquePointer?
        try check(mdb_env_create(&created), "creating an environment for \(path)")
        guard let env = created else {
            throw LMDBError(code: ENOMEM, operation: "creating an environment for \(path)")
        }
        let opened: (databases: [String: MDB_dbi], maxKeySize: Int, mapSize: Int, depthKey: pthread_key_t)
        do throws(LMDBError) {
            opened = try Self.open(env, path: path, names: names, mapSize: mapSize, durable: durable)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.env = env
        self.databases = opened.databases
        self.maxKeySize = opened.maxKeySize
        self.mapSize = opened.mapSize
        self.depthKey = opened.depthKey
    }

    deinit {
        if !closed { mdb_env_close(env) }
        pthread_key_delete(depthKey)
    }

    /// Runs `body` in a write transaction and commits it (a durable commit is fsynced by LMDB
    /// unless `durable: false`); aborts if `body` throws, rethrowing its error. Write transactions
    /// are serialised by LMDB itself.
    ///
    /// If the map fills up (the commit, or any write inside `body`, fails with `MDB_MAP_FULL`),
    /// the transaction is aborted, the map doubled while no transaction is open, and `body` run
    /// once more in a fresh transaction. So `body` must have no effects outside the transaction
    /// that matter if it runs twice. Inside another transaction of this environment on the same
    /// thread the map cannot be grown (that transaction would have to end first), and the
    /// map-full error is thrown instead.
    ///
    /// Starting a write inside another write's closure on the same thread throws `EDEADLK`: LMDB
    /// would wait forever for the writer lock that thread already holds.
    func write<R>(_ body: (LMDBWriteTransaction) throws -> R) throws -> R {
        try transaction(readOnly: false, make: { LMDBWriteTransaction(environment: $0, handle: $1) }, body)
    }

    /// Runs `body` in a read-only transaction: a consistent snapshot as of its start, which writes
    /// committed meanwhile do not change.
    func read<R>(_ body: (LMDBReadTransaction) throws -> R) throws -> R {
        try transaction(readOnly: true, make: { LMDBReadTransaction(environment: $0, handle: $1) }, body)
    }

    /// Forces an fsync of the environment (`mdb_env_sync(force: 1)`): what `durable: false`
    /// commits leave to the caller.
    func sync() throws(LMDBError) {
        _ = try enter(writing: false)
        defer { leave(writing: false) }
        try check(mdb_env_sync(env, 1), "syncing the environment")
    }

    /// Closes the environment, after waiting for transactions under way on other threads; further
    /// use throws. Also done in deinit if not called. Calling it inside one of this environment's
    /// transaction closures is a programming error (it would wait for itself).
    func close() {
        precondition(threadState.depth == 0, "LMDBEnvironment.close() called inside one of its own transactions")
        condition.lock()
        defer { condition.unlock() }
        exclusiveWaiting += 1
        while active > 0 { condition.wait() }
        exclusiveWaiting -= 1
        if !closed {
            closed = true
            unusable = LMDBError(code: EINVAL, operation: "using a closed environment")
            mdb_env_close(env)
        }
        // Wake transactions waiting behind the close, so they see it and throw.
        condition.broadcast()
    }

    // MARK: Transactions

    private enum Outcome<R> {
        case committed(R)
        /// `body` or the commit failed; `mapFull` when the map ran out during the transaction.
        case failed(any Error, mapFull: Bool)
        /// Another process grew the map beyond ours (`MDB_MAP_RESIZED` from `mdb_txn_begin`).
        case mapResized(LMDBError)
    }

    private func transaction<T: LMDBReadTransaction, R>(
        readOnly: Bool, make: (LMDBEnvironment, OpaquePointer) -> T, _ body: (T) throws -> R
    ) throws -> R {
        var grown = false
        var adopted = 0
        while true {
            let sizeAtStart = try enter(writing: !readOnly)
            let outcome = once(readOnly: readOnly, make: make, body)
            leave(writing: !readOnly)
            switch outcome {
            case .committed(let result):
                return result
            case .failed(let error, let mapFull):
                // Doubling once is enough for any ordinary transaction; one that needs more than
                // twice the map it started with reports map-full instead of retrying forever.
                let (doubled, overflow) = sizeAtStart.multipliedReportingOverflow(by: 2)
                if mapFull, !grown, !overflow, try resizeMap(from: sizeAtStart, to: doubled) {
                    grown = true
                    continue
                }
                throw error
            case .mapResized(let error):
                // Size 0 adopts the size the other process set. Bounded in case it keeps changing.
                adopted += 1
                if adopted <= 3, try resizeMap(from: sizeAtStart, to: 0) { continue }
                throw error
            }
        }
    }

    /// One attempt: begin, run `body`, then commit (or, for a read, just end).
    private func once<T: LMDBReadTransaction, R>(
        readOnly: Bool, make: (LMDBEnvironment, OpaquePointer) -> T, _ body: (T) throws -> R
    ) -> Outcome<R> {
        var handle: OpaquePointer?
        let rc = mdb_txn_begin(env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &handle)
        let beginning = readOnly ? "beginning a read transaction" : "beginning a write transaction"
        if rc == MDB_MAP_RESIZED { return .mapResized(LMDBError(code: rc, operation: beginning)) }
        guard rc == MDB_SUCCESS, let handle else {
            return .failed(LMDBError(code: rc == MDB_SUCCESS ? ENOMEM : rc, operation: beginning), mapFull: false)
        }
        let transaction = make(self, handle)
        let result: R
        do {
            result = try body(transaction)
        } catch {
            transaction.end(commit: false)
            return .failed(error, mapFull: transaction.sawMapFull)
        }
        if readOnly {
            // A read transaction has nothing to commit; aborting it releases its reader slot.
            transaction.end(commit: false)
            return .committed(result)
        }
        let commit = transaction.end(commit: true)
        guard commit == MDB_SUCCESS else {
            // A write inside `body` that failed (and was swallowed) leaves the transaction unable
            // to commit; if that write ran out of map, growing it is still the remedy.
            let mapFull = commit == MDB_MAP_FULL || transaction.sawMapFull
            return .failed(LMDBError(code: commit, operation: "committing a write transaction"), mapFull: mapFull)
        }
        return .committed(result)
    }

    // MARK: The gate

    /// This thread's nesting in this environment, kept in a thread-specific slot (one word: the
    /// depth shifted left, the low bit set while a write transaction is open).
    private var threadState: (depth: Int, writing: Bool) {
        get {
            let word = Int(bitPattern: pthread_getspecific(depthKey))
            return (word >> 1, word & 1 == 1)
        }
        set {
            let word = newValue.depth << 1 | (newValue.writing ? 1 : 0)
            pthread_setspecific(depthKey, UnsafeRawPointer(bitPattern: word))
        }
    }

    /// Counts this thread in (waiting first, unless it is already in, until no resize or close
    /// is waiting). Returns the map size the transaction will run with.
    private func enter(writing: Bool) throws(LMDBError) -> Int {
        let state = threadState
        if writing && state.writing {
            throw LMDBError(code: EDEADLK, operation: "beginning a write transaction inside another on the same thread")
        }
        condition.lock()
        defer { condition.unlock() }
        if state.depth == 0 {
            while exclusiveWaiting > 0 { condition.wait() }
            if let unusable { throw unusable }
            active += 1
        }
        // Nested: this thread is already counted, so nothing exclusive can be running.
        threadState = (state.depth + 1, state.writing || writing)
        return mapSize
    }

    private func leave(writing: Bool) {
        let state = threadState
        // Nested writes are refused, so the write that set the flag is the one leaving.
        threadState = (state.depth - 1, writing ? false : state.writing)
        guard state.depth == 1 else { return }
        condition.lock()
        active -= 1
        if active == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// Sets the map size to `newSize` (0: adopt the size another process set) once no transaction
    /// is running, unless someone else has changed it since it was `observed`. Returns whether
    /// the caller should try again: `false` only when this thread is itself inside a transaction.
    private func resizeMap(from observed: Int, to newSize: Int) throws(LMDBError) -> Bool {
        guard threadState.depth == 0 else { return false }
        condition.lock()
        defer { condition.unlock() }
        exclusiveWaiting += 1
        while active > 0 { condition.wait() }
        exclusiveWaiting -= 1
        defer { condition.broadcast() }
        if let unusable { throw unusable }
        guard mapSize == observed else { return true }  // another caller got here first
        let operation = newSize == 0 ? "adopting the map size set by another process" : "growing the map to \(newSize) bytes"
        let rc = mdb_env_set_mapsize(env, newSize)
        guard rc == MDB_SUCCESS else {
            // LMDB unmaps the old mapping before making the new one: if that failed, the
            // environment has no map and must not be used again.
            let error = LMDBError(code: rc, operation: operation)
            unusable = error
            throw error
        }
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        mapSize = info.me_mapsize
        return true
    }

    // MARK: Opening

    /// Creates `path` (and missing parents) with mode 0700; an existing directory is fine.
    private static func makeDirectory(_ path: String) throws(LMDBError) {
        if mkdir(path, 0o700) == 0 { return }
        var code = errno
        if code == EEXIST { return }  // if it is not a directory, mdb_env_open says so
        if code == ENOENT {
            let parent = (path as NSString).deletingLastPathComponent
            if !parent.isEmpty, parent != path {
                try makeDirectory(parent)
                if mkdir(path, 0o700) == 0 { return }
                code = errno
                if code == EEXIST { return }
            }
        }
        throw LMDBError(code: code, operation: "creating directory \(path)")
    }

    /// Configures and opens `env`, then opens (creating) the named databases.
    private static func open(
        _ env: OpaquePointer, path: String, names: [String], mapSize: Int, durable: Bool
    ) throws(LMDBError) -> (databases: [String: MDB_dbi], maxKeySize: Int, mapSize: Int, depthKey: pthread_key_t) {
        try check(mdb_env_set_mapsize(env, mapSize), "setting the map size of \(path)")
        try check(mdb_env_set_maxreaders(env, 512), "setting the reader limit of \(path)")
        try check(mdb_env_set_maxdbs(env, MDB_dbi(names.count)), "setting the database limit of \(path)")
        // MDB_NOTLS ties reader slots to transactions rather than threads, so a read may start on
        // one pool thread and a later read on another without LMDB's per-thread slot getting in
        // the way.
        var flags = UInt32(MDB_NOTLS)
        if !durable { flags |= UInt32(MDB_NOSYNC) }
        try check(mdb_env_open(env, path, flags, 0o600), "opening \(path)")
        // Free reader slots left behind by processes that died mid-read, which would otherwise
        // pin old pages (and the map space they hold) until the lock file is recreated.
        var dead: Int32 = 0
        _ = mdb_reader_check(env, &dead)

        let databases = try openDatabases(env, path: path, names: names)
        var info = MDB_envinfo()
        try check(mdb_env_info(env, &info), "reading the map size of \(path)")
        var key = pthread_key_t()
        try check(pthread_key_create(&key, nil), "creating a thread-local key for \(path)")
        return (databases, Int(mdb_env_get_maxkeysize(env)), info.me_mapsize, key)
    }

    /// Opens every named database in one write transaction, creating those that are missing.
    private static func openDatabases(
        _ env: OpaquePointer, path: String, names: [String]
    ) throws(LMDBError) -> [String: MDB_dbi] {
        var retries = 0
        while true {
            var handle: OpaquePointer?
            var rc = mdb_txn_begin(env, nil, 0, &handle)
            var operation = "beginning the transaction that opens the databases of \(path)"
            var databases: [String: MDB_dbi] = [:]
            if rc == MDB_SUCCESS, let txn = handle {
                for name in names where databases[name] == nil {
                    var dbi = MDB_dbi()
                    rc = mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi)
                    guard rc == MDB_SUCCESS else {
                        operation = "opening database '\(name)' in \(path)"
                        break
                    }
                    databases[name] = dbi
                }
                if rc == MDB_SUCCESS {
                    rc = mdb_txn_commit(txn)
                    operation = "committing the databases of \(path)"
                } else {
                    mdb_txn_abort(txn)
                }
            }
            if rc == MDB_SUCCESS { return databases }
            // Reopening with a map smaller than the data leaves no room to create a database,
            // and another process may have grown the map: either way make room and try again.
            var info = MDB_envinfo()
            mdb_env_info(env, &info)
            let (doubled, overflow) = info.me_mapsize.multipliedReportingOverflow(by: 2)
            if (rc == MDB_MAP_RESIZED || (rc == MDB_MAP_FULL && !overflow)) && retries < 8 {
                retries += 1
                let size = rc == MDB_MAP_FULL ? doubled : 0
                try check(mdb_env_set_mapsize(env, size), "growing the map of \(path)")
                continue
            }
            throw LMDBError(code: rc, operation: operation)
        }
    }
}

/// Read access; valid only inside the closure that received it (afterwards every call throws).
class LMDBReadTransaction {
    fileprivate let environment: LMDBEnvironment
    /// `nil` once the transaction has ended.
    fileprivate var handle: OpaquePointer?
    /// Writes made through this transaction, so `forEach` can tell when its cursor needs to be
    /// positioned again.
    fileprivate var mutations = 0
    /// A write failed because the map is full: `write` grows the map and retries.
    fileprivate var sawMapFull = false

    fileprivate init(environment: LMDBEnvironment, handle: OpaquePointer) {
        self.environment = environment
        self.handle = handle
    }

    /// The value stored under `key`, copied out of the map; `nil` when there is none.
    func get(_ database: String, _ key: [UInt8]) throws(LMDBError) -> [UInt8]? {
        let (txn, dbi) = try prepare(database, "get from")
        try checkKey(key, database, "get from")
        var value = MDB_val()
        let rc = withValue(key) { key in mdb_get(txn, dbi, &key, &value) }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, database, "get from")
        return copy(value)
    }

    /// Every (key, value) in key order whose key starts with `prefix` (all entries when prefix is empty).
    ///
    /// Keys and values are copies. In a write transaction, `body` may change the database being
    /// walked: the walk then carries on after the last key it visited, as the database now stands.
    func forEach(
        _ database: String, prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void
    ) throws {
        let (txn, dbi) = try prepare(database, "iterate over")
        // No key is longer than the limit, so none can start with a longer prefix.
        guard prefix.count <= environment.maxKeySize else { return }
        let cursor = try openCursor(txn, dbi, database, "iterate over")
        defer { mdb_cursor_close(cursor) }

        var key = MDB_val()
        var value = MDB_val()
        var rc = seek(cursor, atOrAfter: prefix, &key, &value)
        while rc == MDB_SUCCESS {
            guard startsWith(key, prefix) else { return }
            let currentKey = copy(key)
            let before = mutations
            try body(currentKey, copy(value))
            if mutations == before {
                rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
            } else {
                // Rather than rely on how LMDB adjusts a cursor whose page changed under it,
                // find the first key after the one just visited afresh.
                rc = seek(cursor, atOrAfter: currentKey, &key, &value)
                if rc == MDB_SUCCESS, view(key).elementsEqual(currentKey) {
                    rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
                }
            }
        }
        if rc != MDB_NOTFOUND { try check(rc, database, "iterate over") }
    }

    // MARK: Helpers

    /// Ends the transaction (committing a write one when asked); returns the commit's result.
    @discardableResult
    fileprivate func end(commit: Bool) -> Int32 {
        guard let txn = handle else { return MDB_SUCCESS }
        handle = nil
        if commit { return mdb_txn_commit(txn) }  // frees the transaction even when it fails
        mdb_txn_abort(txn)
        return MDB_SUCCESS
    }

    fileprivate func prepare(_ database: String, _ verb: String) throws(LMDBError) -> (OpaquePointer, MDB_dbi) {
        guard let txn = handle else {
            throw LMDBError(code: EINVAL, operation: "\(verb) database '\(database)' after the transaction ended")
        }
        guard let dbi = environment.databases[database] else {
            throw LMDBError(code: EINVAL, operation: "\(verb) database '\(database)', which was not opened")
        }
        return (txn, dbi)
    }

    /// LMDB rejects empty keys and keys over its limit; say so with a clear message instead of
    /// its generic MDB_BAD_VALSIZE.
    fileprivate func checkKey(_ key: [UInt8], _ database: String, _ verb: String) throws(LMDBError) {
        guard key.isEmpty || key.count > environment.maxKeySize else { return }
        throw LMDBError(
            code: EINVAL,
            operation: "\(verb) database '\(database)' with a \(key.count)-byte key (keys are 1...\(environment.maxKeySize) bytes)")
    }

    fileprivate func check(_ rc: Int32, _ database: String, _ verb: String) throws(LMDBError) {
        guard rc != MDB_SUCCESS else { return }
        if rc == MDB_MAP_FULL { sawMapFull = true }
        throw LMDBError(code: rc, operation: "\(verb) database '\(database)'")
    }

    fileprivate func openCursor(
        _ txn: OpaquePointer, _ dbi: MDB_dbi, _ database: String, _ verb: String
    ) throws(LMDBError) -> OpaquePointer {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(txn, dbi, &cursor), database, verb)
        guard let cursor else { throw LMDBError(code: ENOMEM, operation: "\(verb) database '\(database)'") }
        return cursor
    }

    /// Positions `cursor` at the first key not less than `key` (the first key when empty).
    fileprivate func seek(
        _ cursor: OpaquePointer, atOrAfter key: [UInt8], _ found: inout MDB_val, _ value: inout MDB_val
    ) -> Int32 {
        if key.isEmpty { return mdb_cursor_get(cursor, &found, &value, MDB_FIRST) }
        return withValue(key) { wanted in
            found = wanted
            return mdb_cursor_get(cursor, &found, &value, MDB_SET_RANGE)
        }
    }
}

/// Write access: everything read access has, plus `put`, `delete` and `deleteAll`.
final class LMDBWriteTransaction: LMDBReadTransaction {
    /// Stores `value` under `key`, replacing any value there.
    func put(_ database: String, _ key: [UInt8], _ value: [UInt8]) throws(LMDBError) {
        let (txn, dbi) = try prepare(database, "put in")
        try checkKey(key, database, "put in")
        let rc = withValue(key) { key in withValue(value) { value in mdb_put(txn, dbi, &key, &value, 0) } }
        mutations += 1
        try check(rc, database, "put in")
    }

    /// Removes `key`; `true` when the key existed.
    @discardableResult
    func delete(_ database: String, _ key: [UInt8]) throws(LMDBError) -> Bool {
        let (txn, dbi) = try prepare(database, "delete from")
        try checkKey(key, database, "delete from")
        let rc = withValue(key) { key in mdb_del(txn, dbi, &key, nil) }
        if rc == MDB_NOTFOUND { return false }
        mutations += 1
        try check(rc, database, "delete from")
        return true
    }

    /// Deletes every key starting with `prefix` (every key when it is empty); returns how many.
    @discardableResult
    func deleteAll(_ database: String, prefix: [UInt8]) throws(LMDBError) -> Int {
        let (txn, dbi) = try prepare(database, "delete from")
        guard prefix.count <= environment.maxKeySize else { return 0 }
        if prefix.isEmpty {
            // Emptying the whole database: LMDB frees its pages in one go.
            var stat = MDB_stat()
            try check(mdb_stat(txn, dbi, &stat), database, "delete from")
            guard stat.ms_entries > 0 else { return 0 }
            mutations += 1
            try check(mdb_drop(txn, dbi, 0), database, "delete from")
            return stat.ms_entries
        }
        let cursor = try openCursor(txn, dbi, database, "delete from")
        defer { mdb_cursor_close(cursor) }
        var deleted = 0
        var key = MDB_val()
        var value = MDB_val()
        // Seek afresh after each delete rather than depend on where a cursor stands after
        // mdb_cursor_del: a lookup per key, and plainly correct.
        while true {
            let rc = seek(cursor, atOrAfter: prefix, &key, &value)
            if rc == MDB_NOTFOUND { break }
            try check(rc, database, "delete from")
            guard startsWith(key, prefix) else { break }
            mutations += 1
            try check(mdb_cursor_del(cursor, 0), database, "delete from")
            deleted += 1
        }
        return deleted
    }
}

// MARK: Bytes in and out of LMDB

/// Runs `body` with an MDB_val describing `bytes`. LMDB only reads through the pointer (nothing
/// here passes MDB_RESERVE), so lending it the array's storage as mutable is sound, and the value
/// is valid only inside `body`.
private func withValue<R>(_ bytes: [UInt8], _ body: (inout MDB_val) -> R) -> R {
    if bytes.isEmpty {
        // An empty array may have no storage at all; give LMDB a real address all the same.
        var zero: UInt8 = 0
        return withUnsafeMutableBytes(of: &zero) { storage in
            var value = MDB_val(mv_size: 0, mv_data: storage.baseAddress)
            return body(&value)
        }
    }
    return bytes.withUnsafeBytes { storage in
        var value = MDB_val(mv_size: storage.count, mv_data: UnsafeMutableRawPointer(mutating: storage.baseAddress))
        return body(&value)
    }
}

/// A view of bytes LMDB returned, valid only until its transaction changes or ends.
private func view(_ value: MDB_val) -> UnsafeRawBufferPointer {
    guard value.mv_size > 0, let data = value.mv_data else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: data, count: value.mv_size)
}

/// Copies bytes out of the map, so they outlive the transaction.
private func copy(_ value: MDB_val) -> [UInt8] { [UInt8](view(value)) }

private func startsWith(_ value: MDB_val, _ prefix: [UInt8]) -> Bool {
    view(value).starts(with: prefix)
}

/// Throws for a failed call made while opening (no transaction to blame yet).
private func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    guard rc != MDB_SUCCESS else { return }
    throw LMDBError(code: rc, operation: operation())
}
