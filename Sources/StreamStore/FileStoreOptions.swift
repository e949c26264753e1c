/// When the file store forces writes to disk, and so what an acknowledgement promises.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// Every append is synced on its own before it is acknowledged: each pays a full sync, none
    /// waits to share one. Same guarantee as `batch`, slower under concurrency.
    case always
    /// Group commit (the default): appends that arrive while a sync runs wait for the next one
    /// and share it. Acknowledged means on disk; survives a power cut.
    case batch
    /// Never syncs: acknowledged means handed to the kernel. Survives the process being killed,
    /// not the machine losing power (the last seconds of appends may then be lost).
    case never
}

/// How a `FileStore` is laid out and how it behaves.
public struct FileStoreOptions: Sendable {
    /// The data directory: `meta/` (LMDB) and `streams/` (segment files).
    public var directory: String
    public var fsync: FsyncPolicy = .batch
    /// Open segment and index files kept at most (least recently used are closed).
    public var maxFileHandles: Int = 100
    /// A segment file is closed to appends once it holds this many bytes.
    public var segmentBytes: Int = 64 << 20
    /// The most recent bytes of each stream kept in memory, so live readers never wait on disk.
    public var hotTailBytes: Int = 256 << 10
    /// All streams' in-memory tails together stay under this.
    public var hotTailBudgetBytes: Int = 256 << 20
    /// Recently read history kept in memory (64 KiB blocks), for catch-up readers.
    public var blockCacheBytes: Int = 64 << 20
    /// Threads doing file and LMDB I/O.
    public var ioThreads: Int = 4
    /// Injected failures, for tests of disk-full and I/O errors.
    public var faults: StorageFaults?

    public init(directory: String) {
        self.directory = directory
    }
}
