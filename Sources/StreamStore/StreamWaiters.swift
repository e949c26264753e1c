import NIOCore

/// The live readers waiting on one stream (`waitForChange`), kept by whichever store holds the
/// stream, under that store's own lock.
///
/// Promises are never completed here: taking them out returns them, and the store completes
/// them with `wake` once its lock is released, because completing a promise runs its callbacks
/// inline and they may call back into the store.
struct StreamWaiters {
    private var promises: [UInt64: EventLoopPromise<StoreWait.Outcome>] = [:]

    var isEmpty: Bool { promises.isEmpty }

    mutating func add(_ id: UInt64, _ promise: EventLoopPromise<StoreWait.Outcome>) {
        promises[id] = promise
    }

    /// Removes one waiter (a cancelled wait); `nil` if it was already woken.
    mutating func remove(_ id: UInt64) -> EventLoopPromise<StoreWait.Outcome>? {
        promises.removeValue(forKey: id)
    }

    /// Every waiter (of a stream being removed, for waking).
    var all: [EventLoopPromise<StoreWait.Outcome>] { Array(promises.values) }

    /// Removes every waiter, for waking.
    mutating func takeAll() -> [EventLoopPromise<StoreWait.Outcome>] {
        defer { promises.removeAll() }
        return Array(promises.values)
    }

    /// Wakes waiters with `.changed` on their own event loops, one task per loop, after the
    /// current one: the request that caused the change (an append) is answered first instead of
    /// waiting until every reader's response has been built.
    static func wake(_ promises: [EventLoopPromise<StoreWait.Outcome>]) {
        guard !promises.isEmpty else { return }
        var byLoop: [ObjectIdentifier: (any EventLoop, [EventLoopPromise<StoreWait.Outcome>])] = [:]
        for promise in promises {
            let loop = promise.futureResult.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append(promise)
        }
        for (loop, batch) in byLoop.values {
            loop.execute { batch.forEach { $0.succeed(.changed) } }
        }
    }
}
