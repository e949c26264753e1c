import Dispatch
import NIOConcurrencyHelpers

/// A seam for tests: makes the file store's writes fail as a full or broken disk would, and
/// can hold its committer so that several operations land in one batch. Production stores
/// have none.
public final class StorageFaults: Sendable {
    private struct State {
        var writeFailure: Int32?
        var syncFailure: Int32?
        var held = false
    }

    private let state = NIOLockedValueBox(State())
    private let released = DispatchSemaphore(value: 0)

    public init() {}

    /// Every write and sync from now on fails with this errno (e.g. `ENOSPC`); `nil` heals.
    public func failWrites(with errno: Int32?) {
        state.withLockedValue { $0.writeFailure = errno }
    }

    /// Only syncs fail (the bytes were written, and are then not durable).
    public func failSyncs(with errno: Int32?) {
        state.withLockedValue { $0.syncFailure = errno }
    }

    /// The committer waits before its next batch until `releaseCommits()`; what is queued
    /// meanwhile commits as one batch.
    public func holdCommits() {
        state.withLockedValue { $0.held = true }
    }

    public func releaseCommits() {
        let wasHeld = state.withLockedValue { state in
            defer { state.held = false }
            return state.held
        }
        if wasHeld { released.signal() }
    }

    /// Called by the committer before each batch.
    func passGate() {
        guard state.withLockedValue({ $0.held }) else { return }
        released.wait()
    }

    /// Throws the injected failure, if any. Called before each write.
    func check(_ operation: String) throws(StorageError) {
        if let code = state.withLockedValue({ $0.writeFailure }) {
            throw StorageError(code: code, operation: operation)
        }
    }

    /// Throws the injected failure, if any. Called before each sync.
    func checkSync(_ operation: String) throws(StorageError) {
        if let code = state.withLockedValue({ $0.writeFailure ?? $0.syncFailure }) {
            throw StorageError(code: code, operation: operation)
        }
    }
}
