import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Keeps the subscriptions' state in one file (`state.json` in the directory given) so that a
/// restart finds every subscription with its links, acked offsets, generation and retry
/// schedule. Each save writes the whole state to a temporary file, syncs it and renames it over
/// the old one (then syncs the directory), so a crash leaves the old state or the new one,
/// never a mix. Saves run on a thread pool; saves asked for while one is writing are folded
/// into the next write, whose completion answers them all.
public final class SubscriptionJournal: Sendable {
    public let path: String
    private let pool: NIOThreadPool

    private struct State {
        var writing = false
        /// The newest state not yet written, with its sequence number.
        var next: (sequence: UInt64, bytes: [UInt8])?
        /// The sequence number of the newest state written, and of the newest handed in.
        var written: UInt64 = 0
        var newest: UInt64 = 0
        /// Who waits for which state to be durable.
        var waiting: [(sequence: UInt64, promise: EventLoopPromise<Void>)] = []
    }

    private let state = NIOLockedValueBox(State())

    public init(directory: String, pool: NIOThreadPool = .singleton) {
        self.path = directory + "/state.json"
        self.pool = pool
    }

    /// The state last saved, or `nil` when there is none yet. Blocking: called at startup.
    public func load() throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return Array(data)
    }

    /// Saves `bytes`, the state numbered `sequence` (numbers grow with the state: a save may
    /// arrive after a newer one, and must not overwrite it). The future completes once this
    /// state, or a newer one, is durable.
    public func save(_ bytes: [UInt8], sequence: UInt64, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        let start = state.withLockedValue { state -> Bool in
            if sequence <= state.written {
                // Something as new is already on disk.
                promise.succeed()
                return false
            }
            // An older state than one already handed in (being written, or next) is not
            // written: the newer one answers its waiter. (Unless nothing is under way, after a
            // failed write: then this one is written, so its waiter is answered.)
            if sequence > state.newest || (!state.writing && state.next == nil) {
                state.newest = max(state.newest, sequence)
                state.next = (sequence, bytes)
            }
            state.waiting.append((sequence, promise))
            guard !state.writing else { return false }
            state.writing = true
            return true
        }
        if start { writeNext() }
        return promise.futureResult
    }

    private func writeNext() {
        let batch = state.withLockedValue { state -> (UInt64, [UInt8])? in
            guard let next = state.next else {
                state.writing = false
                return nil
            }
            state.next = nil
            return next
        }
        guard let (sequence, bytes) = batch else { return }
        let path = self.path
        pool.submit { _ in
            let result = Result { try Self.replace(path, with: bytes) }
            let done = self.state.withLockedValue { state -> [EventLoopPromise<Void>] in
                if case .success = result { state.written = max(state.written, sequence) }
                // Everyone waiting for this state or an older one is answered by this write.
                let answered = state.waiting.filter { $0.sequence <= sequence }.map(\.promise)
                state.waiting.removeAll { $0.sequence <= sequence }
                return answered
            }
            for promise in done { promise.completeWith(result) }
            self.writeNext()
        }
    }

    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw JournalError(path: temporary, errno: errno) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                let failure = errno
                close(descriptor)
                throw JournalError(path: temporary, errno: failure)
            }
            written += count
        }
        guard fsync(descriptor) == 0 else {
            let failure = errno
            close(descriptor)
            throw JournalError(path: temporary, errno: failure)
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw JournalError(path: path, errno: errno) }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    public struct JournalError: Error, CustomStringConvertible {
        public var path: String
        public var errno: Int32
        public var description: String { "could not write \(path): \(String(cString: strerror(errno)))" }
    }
}
