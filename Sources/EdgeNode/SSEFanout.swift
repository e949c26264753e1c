import DurableStreams
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A run of upstream SSE events ending in a control event: the bytes to forward, and the part
/// of the stream `[from, to)` they carry.
struct SSEBatch: Sendable {
    /// The batch as the upstream sent it: its data events, then its control event.
    var raw: ByteBuffer
    /// Just the data events.
    var data: ByteBuffer
    var from: StreamOffset
    var to: StreamOffset
    var closed: Bool
    /// The upstream control event's facts: its cursor (none once closed) and whether it said
    /// up-to-date, so a client's copy can be re-rendered with a cursor of its own.
    var control: SSEEncoder.Control
}

/// A client of a subscription: how to reach it on its own event loop.
struct SSESubscriber: Sendable {
    /// The client's event loop.
    let loop: any EventLoop
    /// Takes a batch; called on `loop` only.
    let receive: @Sendable (SSEBatch) -> Void
    /// The subscription is over (stream closed, deleted, or the upstream refuses it). Called
    /// from any thread.
    let ended: @Sendable () -> Void
}

/// One upstream SSE subscription shared by every client of a stream on this edge.
///
/// It starts where its first client caught up to, forwards each upstream batch to the clients
/// positioned exactly at the batch's start, and reconnects by itself from its last position
/// when the upstream ends the response (as origins do every minute). Clients that are behind
/// catch up from the cache and re-attach; nothing is ever forwarded twice or skipped, because a
/// client only takes a batch that starts at its own offset.
final class SSESubscription: Sendable {
    let key: String
    private let upstream: UpstreamClient
    private let requestHead: HTTPRequestHead
    private let loop: any EventLoop
    private let onFinished: @Sendable (SSESubscription) -> Void
    /// Told each new position the upstream reports (and whether the stream closed there): the
    /// edge's tail tracker, so that cached tail answers the subscription has passed are known
    /// to be out of date.
    private let observe: @Sendable (StreamOffset, Bool) -> Void
    /// Told the size of each piece of body the upstream sends (the edge's byte counts).
    private let onReceived: @Sendable (Int) -> Void
    private let state: NIOLockedValueBox<State>

    private struct State {
        var position: StreamOffset
        var subscribers: [UInt64: SSESubscriber] = [:]
        var stream: UpstreamStream?
        var splitter = SSEEventSplitter()
        var pending = ByteBuffer()
        var finished = false
        var failures = 0
        var headOK = false
    }

    init(key: String, start: StreamOffset, upstream: UpstreamClient, requestHead: HTTPRequestHead, loop: any EventLoop,
         observe: @escaping @Sendable (StreamOffset, Bool) -> Void, onReceived: @escaping @Sendable (Int) -> Void = { _ in },
         onFinished: @escaping @Sendable (SSESubscription) -> Void) {
        self.key = key
        self.onReceived = onReceived
        self.upstream = upstream
        self.requestHead = requestHead
        self.loop = loop
        self.observe = observe
        self.onFinished = onFinished
        self.state = NIOLockedValueBox(State(position: start))
    }

    /// Where the subscription is in the stream.
    var position: StreamOffset { state.withLockedValue { $0.position } }

    /// Adds a client; returns the subscription's position, or `nil` if it has already finished.
    func attach(_ id: UInt64, _ subscriber: SSESubscriber) -> StreamOffset? {
        state.withLockedValue { state in
            guard !state.finished else { return nil }
            state.subscribers[id] = subscriber
            return state.position
        }
    }

    /// Removes a client; the last one leaving ends the upstream subscription.
    func detach(_ id: UInt64) {
        let (finishedNow, stream): (Bool, UpstreamStream?) = state.withLockedValue { state in
            state.subscribers.removeValue(forKey: id)
            guard state.subscribers.isEmpty, !state.finished else { return (false, nil) }
            state.finished = true
            defer { state.stream = nil }
            return (true, state.stream)
        }
        guard finishedNow else { return }
        stream?.cancel()
        onFinished(self)
    }

    var subscriberCount: Int { state.withLockedValue { $0.subscribers.count } }

    /// Opens (or re-opens) the upstream response from the current position.
    func connect() {
        let offset = state.withLockedValue { $0.position }
        var head = requestHead
        let path = RequestTarget(head.uri).path
        head.uri = "\(path)?offset=\(offset)&live=sse"
        let stream = upstream.stream(
            head, on: loop,
            onHead: { [self] head in
                if head.status == .ok {
                    state.withLockedValue { $0.headOK = true; $0.failures = 0 }
                } else {
                    finish()  // 404 and friends: clients end; their next request sees the status
                }
            },
            onBody: { [self] body in received(body) },
            onEnd: { [self] _ in upstreamEnded() })
        let cancelNow: Bool = state.withLockedValue { state in
            if state.finished { return true }
            state.stream = stream
            state.headOK = false
            state.splitter = SSEEventSplitter()
            state.pending = ByteBuffer()
            return false
        }
        if cancelNow { stream.cancel() }
    }

    private func received(_ body: ByteBuffer) {
        onReceived(body.readableBytes)
        var batches: [SSEBatch] = []
        var subscribers: [SSESubscriber] = []
        var failed = false
        state.withLockedValue { state in
            guard !state.finished else { return }
            let events: [SSEEventSplitter.Event]
            do { events = try state.splitter.feed(body) } catch {
                failed = true
                return
            }
            for event in events {
                var raw = event.raw
                if event.name == "control" {
                    guard let control = Self.control(event.data) else { continue }
                    let data = state.pending
                    state.pending.writeBuffer(&raw)
                    batches.append(SSEBatch(
                        raw: state.pending, data: data, from: state.position, to: control.nextOffset, closed: control.closed,
                        control: control))
                    state.position = control.nextOffset
                    state.pending = ByteBuffer()
                } else {
                    state.pending.writeBuffer(&raw)
                }
            }
            subscribers = Array(state.subscribers.values)
        }
        if failed {
            state.withLockedValue { $0.stream }?.cancel()
            return
        }
        guard let last = batches.last else { return }
        // Before any client sees the batches: a client that then catches up from the cache must
        // find the tail answers these batches have passed already out of date.
        observe(last.to, last.closed)
        Self.deliver(batches, to: subscribers)
        if batches.contains(where: \.closed) { finish() }
    }

    /// Hands the batches to every subscriber on its own loop, with one task per event loop
    /// rather than one per subscriber: 1,000 clients on two loops cost two hops per batch, not
    /// 1,000. Subscribers on the calling loop are served in place.
    private static func deliver(_ batches: [SSEBatch], to subscribers: [SSESubscriber]) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, subscribers: [SSESubscriber])] = [:]
        for subscriber in subscribers {
            byLoop[ObjectIdentifier(subscriber.loop), default: (subscriber.loop, [])].subscribers.append(subscriber)
        }
        // The other loops get their task first: serving this loop's subscribers in place
        // before handing off would make every other loop wait for those writes.
        var here: (@Sendable () -> Void)?
        for (loop, group) in byLoop.values {
            let serve: @Sendable () -> Void = {
                // A closed batch is the last: nothing after it is delivered.
                for batch in batches {
                    for subscriber in group { subscriber.receive(batch) }
                    if batch.closed { break }
                }
            }
            if loop.inEventLoop { here = serve } else { loop.execute(serve) }
        }
        here?()
    }

    private func upstreamEnded() {
        let retry: TimeAmount? = state.withLockedValue { state in
            state.stream = nil
            guard !state.finished, !state.subscribers.isEmpty else { return nil }
            state.failures = state.headOK ? 0 : state.failures + 1
            // Reconnect at once after a normal end (the upstream's periodic close), with growing
            // pauses while the upstream is failing.
            return state.failures == 0 ? .zero : .milliseconds(Int64(min(2_000, 50 << min(state.failures, 6))))
        }
        guard let retry else { return }
        if retry == .zero {
            connect()
        } else {
            loop.scheduleTask(in: retry) { [self] in connect() }
        }
    }

    /// Ends the subscription and every client on it.
    private func finish() {
        let (subscribers, stream): ([SSESubscriber], UpstreamStream?) = state.withLockedValue { state in
            guard !state.finished else { return ([], nil) }
            state.finished = true
            defer {
                state.subscribers = [:]
                state.stream = nil
            }
            return (Array(state.subscribers.values), state.stream)
        }
        stream?.cancel()
        for subscriber in subscribers { subscriber.ended() }
        onFinished(self)
    }

    private static func control(_ json: String) -> SSEEncoder.Control? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let next = (object["streamNextOffset"] as? String).flatMap(StreamOffset.init)
        else { return nil }
        let closed = object["streamClosed"] as? Bool ?? false
        return SSEEncoder.Control(
            nextOffset: next, cursor: (object["streamCursor"] as? String).flatMap { UInt64($0) },
            upToDate: object["upToDate"] as? Bool ?? false, closed: closed)
    }
}

/// The edge's subscriptions, one per stream (and per credential).
final class SSEFanout: Sendable {
    private let upstream: UpstreamClient
    private let subscriptions = NIOLockedValueBox<[String: SSESubscription]>([:])
    private let nextID = NIOLockedValueBox<UInt64>(1)
    /// Told the size of each piece of body any subscription receives.
    private let onReceived: @Sendable (Int) -> Void

    init(upstream: UpstreamClient, onReceived: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.upstream = upstream
        self.onReceived = onReceived
    }

    /// The key of a stream's subscription: one per stream and credentials.
    static func key(stream: String, credentials: String?) -> String {
        stream + "\u{0}" + (credentials ?? "")
    }

    /// A unique id for a subscriber.
    func makeID() -> UInt64 {
        nextID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
    }

    /// The subscription for `key`, started at `start` if there is none. `created` tells whether
    /// this call opened a new upstream subscription.
    /// `observe` is told each position the new subscription reaches (see `SSESubscription`).
    func subscription(
        _ key: String, start: StreamOffset, head: HTTPRequestHead, loop: any EventLoop,
        observe: @escaping @Sendable (StreamOffset, Bool) -> Void = { _, _ in }
    ) -> (SSESubscription, created: Bool) {
        let (subscription, created): (SSESubscription, Bool) = subscriptions.withLockedValue { subscriptions in
            if let existing = subscriptions[key] { return (existing, false) }
            let subscription = SSESubscription(
                key: key, start: start, upstream: upstream, requestHead: head, loop: loop, observe: observe,
                onReceived: onReceived, onFinished: { [weak self] finished in self?.remove(finished) })
            subscriptions[key] = subscription
            return (subscription, true)
        }
        return (subscription, created)
    }

    /// Forgets a finished subscription (not a newer one that took its key since).
    private func remove(_ finished: SSESubscription) {
        subscriptions.withLockedValue { subscriptions in
            if subscriptions[finished.key] === finished { subscriptions.removeValue(forKey: finished.key) }
        }
    }

    /// Whether a subscription for `key` is running.
    func hasSubscription(_ key: String) -> Bool { subscriptions.withLockedValue { $0[key] != nil } }

    /// Upstream subscriptions open right now.
    var count: Int { subscriptions.withLockedValue { $0.count } }
}
