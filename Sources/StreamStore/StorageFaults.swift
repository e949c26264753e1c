import NIOConcurrencyHelpers

/// A seam for tests: makes the file store's writes fail as a full or broken disk would, without
/// needing one. Production stores have none.
public final class StorageFaults: Sendable {
    private let failure = NIOLockedValueBox<Int32?>(nil)

    public init() {}

    /// Every write and sync from now on fails with this errno (e.g. `ENOSPC`); `nil` heals.
    public func failWrites(with errno: Int32?) {
        failure.withLockedValue { $0 = errno }
    }

    /// Throws the injected failure, if any. Called before each write and sync.
    func check(_ operation: String) throws(StorageError) {
        if let code = failure.withLockedValue({ $0 }) {
            throw StorageError(code: code, operation: operation)
        }
    }
}
