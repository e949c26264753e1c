import ArgumentParser
import Foundation
import ServerSupport
import StreamStore
import Subscriptions

/// Where an origin keeps its streams: `--data-dir` and its settings, shared by `origin` and `dev`.
struct StorageOptions: ParsableArguments {
    @Option(help: "Directory for durable storage (segment files + LMDB). Without it, streams live in memory and a restart loses them.")
    var dataDir: String?

    @Option(help: "With --data-dir: when appends reach the disk: batch (default: acknowledged once synced, concurrent appends share a sync), always (each append synced on its own) or never (no sync: survives a crash of the process, not of the machine).")
    var fsync: String?

    @Option(help: "With --data-dir: most segment and index files kept open (default 100).")
    var maxFileHandles: Int?

    /// The file store's options, or `nil` for an in-memory store; `file` supplies what flags do not.
    func resolve(file: ConfigurationFile?) throws -> FileStoreOptions? {
        guard let directory = try dataDir ?? file?.string("data_dir") else {
            if fsync != nil || maxFileHandles != nil {
                throw ValidationError("--fsync and --max-file-handles apply to --data-dir storage; add --data-dir")
            }
            return nil
        }
        var options = FileStoreOptions(directory: directory)
        if let text = try fsync ?? file?.string("fsync") {
            guard let policy = FsyncPolicy(rawValue: text) else {
                throw ValidationError("fsync must be always, batch or never, not '\(text)'")
            }
            options.fsync = policy
        }
        if let count = try maxFileHandles ?? file?.int("max_file_handles") {
            guard (2...1_000_000).contains(count) else { throw ValidationError("max-file-handles must be between 2 and 1000000") }
            options.maxFileHandles = count
        }
        return options
    }

    /// Opens the store (recovering what the directory holds) and says what it found.
    /// The subscription keys kept in the data directory (`subscriptions/`), made on first use.
    static func subscriptionKeys(_ options: FileStoreOptions) throws -> SubscriptionKeys {
        try SubscriptionKeys.load(directory: options.directory + "/subscriptions")
    }

    static func open(_ options: FileStoreOptions) throws -> FileStore {
        do {
            let store = try FileStore.open(options)
            print("data dir \(options.directory) (fsync \(options.fsync.rawValue)): \(store.recovery)")
            return store
        } catch {
            throw ValidationError("cannot open data dir \(options.directory): \(error)")
        }
    }
}
