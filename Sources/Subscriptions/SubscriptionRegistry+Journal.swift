import DurableStreams
import Foundation
import NIOCore
import StreamStore

/// Keeping the registry's state across restarts (`SubscriptionJournal`): what is saved and
/// how it comes back.
extension SubscriptionRegistry {
    /// Writes the whole state to the journal (when there is one); completes once it is durable.
    /// A failed write is logged and reported to the caller, whose request then fails.
    func persist(on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard let journal else { return loop.makeSucceededVoidFuture() }
        let (sequence, snapshot) = state.withLockedValue { state in
            state.savedSequence += 1
            return (state.savedSequence, SubscriptionSnapshot(subscriptions: state.entries.keys.sorted().map { id in
                let entry = state.entries[id]!
                let retryAt = entry.machine.retryAt.map { at -> Int64 in
                    let remaining = at > Self.monotonicNow ? at - Self.monotonicNow : 0
                    return Int64(Date().timeIntervalSince1970 * 1000) + Int64(remaining / 1_000_000)
                }
                return SubscriptionSnapshot.Subscription(
                    id: id, configuration: String(decoding: entry.configuration.requestBody, as: UTF8.self), createdAt: entry.createdAt,
                    baseURL: entry.baseURL, generation: entry.machine.generation, failures: entry.machine.failures,
                    retryAtMilliseconds: retryAt,
                    links: entry.machine.links.keys.sorted().map { path in
                        let link = entry.machine.links[path]!
                        return SubscriptionSnapshot.Link(path: path, explicit: link.explicit, glob: link.glob, acked: link.acked.description)
                    })
            }))
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(snapshot))
        } catch {
            return loop.makeFailedFuture(error)
        }
        return journal.save(bytes, sequence: sequence, on: loop).flatMapErrorThrowing { [logger] error in
            logger.error("could not keep the subscriptions' state", metadata: ["error": "\(error)"])
            throw SubscriptionError(status: 503, code: "STORAGE_ERROR", "the subscription state could not be kept")
        }
    }

    /// Loads what the journal kept (at startup, before serving): every subscription comes back
    /// with its links and cursors, tails read from the store, no wake in flight (a new salt
    /// fences tokens the old process gave out), and pending work wakes at once.
    public func restore(on loop: any EventLoop) -> EventLoopFuture<Int> {
        guard let journal else { return loop.makeSucceededFuture(0) }
        let snapshot: SubscriptionSnapshot
        do {
            guard let bytes = try journal.load() else { return loop.makeSucceededFuture(0) }
            snapshot = try JSONDecoder().decode(SubscriptionSnapshot.self, from: Data(bytes))
        } catch {
            return loop.makeFailedFuture(error)
        }
        let paths = Set(snapshot.subscriptions.flatMap { $0.links.map(\.path) })
        let lookups = paths.map { path in
            store.info(path, on: loop).map { Optional($0.tail) }.recover { _ in nil }.map { (path, $0) }
        }
        return EventLoopFuture.whenAllSucceed(lookups, on: loop).flatMapThrowing { found -> (Int, [EventLoopFuture<Void>]) in
            let tails = Dictionary(found, uniquingKeysWith: { first, _ in first })
            let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
            let now = Self.monotonicNow
            var restored: [(String, Entry)] = []
            for kept in snapshot.subscriptions {
                let configuration = try SubscriptionConfiguration.parse(Array(kept.configuration.utf8))
                var links: [String: StreamLink] = [:]
                for link in kept.links {
                    let tail = tails[link.path].flatMap { $0 } ?? .zero
                    var acked = StreamOffset(link.acked) ?? .zero
                    // A stream deleted and made again while we were down starts over.
                    if acked > tail { acked = .zero }
                    links[link.path] = StreamLink(explicit: link.explicit, glob: link.glob, acked: acked, tail: tail)
                }
                let kind: WakeMachine.Kind = configuration.wakeStream.map { .pullWake(wakeStream: $0) } ?? .webhook
                let retryAt = kept.retryAtMilliseconds.map { at in now &+ UInt64(max(0, at - nowMilliseconds)) * 1_000_000 }
                let machine = WakeMachine(
                    kind: kind, leaseNanos: UInt64(configuration.leaseMilliseconds) * 1_000_000,
                    salt: String(UInt32.random(in: .min ... .max), radix: 16), generation: kept.generation + Self.restartGenerationGap,
                    links: links, failures: kept.failures, retryAt: retryAt)
                restored.append((kept.id, Entry(configuration: configuration, hash: configuration.hash, machine: machine,
                                                createdAt: kept.createdAt, baseURL: kept.baseURL)))
            }
            self.state.withLockedValue { state in
                for (id, entry) in restored {
                    state.entries[id] = entry
                    if let stream = entry.configuration.wakeStream { state.wakeStreams[stream, default: 0] += 1 }
                }
            }
            var wakes: [EventLoopFuture<Void>] = []
            for (id, _) in restored {
                let actions = self.state.withLockedValue { $0.entries[id]!.machine.tick(now: now) }
                wakes.append(self.perform(id, actions, on: loop))
                if let next = self.state.withLockedValue({ $0.entries[id]!.machine.nextDeadline }) { self.arm(id, at: next) }
            }
            return (restored.count, wakes)
        }.flatMap { count, wakes in
            // The wake events are written before the server takes its first request.
            EventLoopFuture.andAllComplete(wakes, on: loop).map { count }
        }
    }
}
