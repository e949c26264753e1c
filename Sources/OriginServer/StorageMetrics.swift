import NIOConcurrencyHelpers
import Prometheus
import StreamStore

/// The durable store's figures as `ds_origin_store_*` metrics, brought up to date at each
/// scrape from the store's statistics (counters advance by what changed since the last one).
final class StorageMetrics: Sendable {
    private let commits: Counter
    private let committedWrites: Counter
    private let commitSeconds: Counter
    private let failedCommits: Counter
    private let memoryReads: Counter
    private let diskReads: Counter
    private let cachedReads: Counter
    private let blockCacheBytes: Gauge
    private let queuedWrites: Gauge
    private let openFiles: Gauge
    private let hotTailBytes: Gauge
    private let last = NIOLockedValueBox(StoreStatistics())

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "origin_store", metricName: metric, unitName: unit, helpText: help)
        }
        commits = registry.makeCounter(descriptor: name("commits", "total", "Commit batches (one data sync and one LMDB transaction each)"))
        committedWrites = registry.makeCounter(descriptor: name("committed_writes", "total", "Creates and appends made durable"))
        commitSeconds = registry.makeCounter(descriptor: name("commit_seconds", "total", "Time spent committing batches"))
        failedCommits = registry.makeCounter(descriptor: name("failed_commits", "total", "Commit batches that failed (disk full, I/O error)"))
        memoryReads = registry.makeCounter(descriptor: name("memory_reads", "total", "Reads answered from a stream's in-memory tail"))
        diskReads = registry.makeCounter(descriptor: name("disk_reads", "total", "Reads answered from segment files"))
        cachedReads = registry.makeCounter(descriptor: name("cached_reads", "total", "Reads of history answered from the block cache"))
        blockCacheBytes = registry.makeGauge(descriptor: name("block_cache_bytes", "", "Bytes of recently read history held in memory"))
        queuedWrites = registry.makeGauge(descriptor: name("queued_writes", "", "Writes waiting to be committed"))
        openFiles = registry.makeGauge(descriptor: name("open_files", "", "Segment and index files open"))
        hotTailBytes = registry.makeGauge(descriptor: name("hot_tail_bytes", "", "Bytes of stream tails held in memory"))
    }

    func update(_ now: StoreStatistics) {
        let before = last.withLockedValue { last in
            defer { last = now }
            return last
        }
        commits.increment(by: Int64(max(0, now.commits - before.commits)))
        committedWrites.increment(by: Int64(max(0, now.committedWrites - before.committedWrites)))
        commitSeconds.increment(by: max(0, now.commitSeconds - before.commitSeconds))
        failedCommits.increment(by: Int64(max(0, now.failedCommits - before.failedCommits)))
        memoryReads.increment(by: Int64(max(0, now.memoryReads - before.memoryReads)))
        diskReads.increment(by: Int64(max(0, now.diskReads - before.diskReads)))
        cachedReads.increment(by: Int64(max(0, now.cachedReads - before.cachedReads)))
        blockCacheBytes.set(Double(now.blockCacheBytes))
        queuedWrites.set(Double(now.queuedWrites))
        openFiles.set(Double(now.openFiles))
        hotTailBytes.set(Double(now.hotTailBytes))
    }
}
