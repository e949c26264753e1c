import Dispatch
import Foundation

/// Waits for SIGINT or SIGTERM so servers can shut down cleanly instead of dying mid-write.
enum Signals {
    static func waitForTermination() async {
        // What the command printed must reach a pipe or log file now, not when it exits.
        fflush(nil)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "durable-streams.signals")
            let once = Once(continuation)
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler { once.resume() }
                source.resume()
                Sources.keep(source)
            }
        }
    }

    /// Runs `reload` on every SIGHUP (on a queue of its own) until the process exits.
    static func onHangup(_ reload: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "durable-streams.reload"))
        source.setEventHandler(handler: reload)
        source.resume()
        Sources.keep(source)
    }

    /// Resumes the continuation the first time only (both signals may arrive).
    private final class Once: @unchecked Sendable {
        private var continuation: CheckedContinuation<Void, Never>?
        private let lock = NSLock()
        init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
        func resume() {
            lock.lock()
            let pending = continuation
            continuation = nil
            lock.unlock()
            pending?.resume()
        }
    }

    /// Signal sources must outlive the wait; they are process-wide anyway.
    private enum Sources {
        nonisolated(unsafe) static var all: [any DispatchSourceSignal] = []
        static let lock = NSLock()
        static func keep(_ source: any DispatchSourceSignal) {
            lock.lock()
            all.append(source)
            lock.unlock()
        }
    }
}
