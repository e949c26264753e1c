import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

extension EdgeSSESession {
    /// What an SSE request needs once its first catch-up read has succeeded.
    struct Plan: Sendable {
        /// The stream's canonical name (`StreamPath.canonicalName`).
        var stream: String
        var credentials: String?
        var clientCursor: String?
        /// The first catch-up answer (from the cache when it could be).
        var firstHeaders: HTTPHeaders
        var firstBody: ByteBuffer
        var base64: Bool
        var upstreamHead: HTTPRequestHead
    }
}

/// One client's SSE response on the edge (§5.8): it renders catch-up reads from the cache as
/// events until it reaches the live position, then takes the shared upstream subscription's
/// batches that start exactly at its offset. Confined to the client's event loop.
final class EdgeSSESession: SSESession {
    private let service: EdgeService
    private let plan: Plan
    private let loop: any EventLoop
    private let id: UInt64
    private weak var output: (any SSEOutput)?
    private var offset = StreamOffset.zero
    private var subscription: SSESubscription?
    private var counted = false
    private var finished = false
    private var reconnectTimer: Scheduled<Void>?
    /// The highest cursor this response has sent: §10.1 cursors never go back, whether the edge
    /// renders a control event itself (a fresh jitter each time) or forwards the upstream's,
    /// which was asked for without this client's cursor.
    private var cursorFloor: UInt64?
    /// Where the last catch-up toward a subscription that was ahead started (see `attach`).
    private var lastDetourFrom: StreamOffset?
    /// A client further behind than this is disconnected; it reconnects from its last offset.
    static let backlogLimit = 4 << 20

    init(service: EdgeService, plan: Plan, loop: any EventLoop) {
        self.service = service
        self.plan = plan
        self.loop = loop
        self.id = service.fanout.makeID()
    }

    func start(_ output: any SSEOutput) {
        self.output = output
        service.metrics.liveReaderStarted(plan.stream, .sse)
        reconnectTimer = loop.assumeIsolated().scheduleTask(in: service.configuration.sseReconnectInterval) { [weak self] in
            self?.stop()
        }
        caughtUp(plan.firstHeaders, plan.firstBody)
    }

    /// Ends the response (reconnect interval, shutdown, end of stream).
    func stop() {
        guard !finished else { return }
        finished = true
        if !counted {
            // Answered entirely by catch-up reads (a closed stream, a client that left early):
            // one SSE request, served by the edge without an upstream subscription.
            counted = true
            service.metrics.request(.sse, .hit, stream: plan.stream)
        }
        reconnectTimer?.cancel()
        subscription?.detach(id)
        subscription = nil
        service.metrics.liveReaderEnded(plan.stream, .sse)
        output?.finish()
    }

    /// Fan-out cannot wait for one client, so a backlog is only bounded (`send`), never waited on.
    func drained() {}

    /// The client went away.
    func cancel() {
        output = nil
        stop()
    }

    // MARK: - Catching up from the cache

    private func caughtUp(_ headers: HTTPHeaders, _ body: ByteBuffer) {
        guard !finished else { return }
        let facts = ReadFacts(headers)
        guard let next = facts.nextOffset else { return stop() }
        let closed = facts.closed
        let upToDate = facts.upToDate
        var events = ByteBuffer()
        let isEmptyArray = body.readableBytes == 2 && String(buffer: body) == "[]"
        if body.readableBytes > 0 && !isEmptyArray {
            SSEEncoder.writeData([body], base64: plan.base64, into: &events)
        }
        SSEEncoder.writeControl(
            .init(nextOffset: next, cursor: closed ? nil : forward(service.cursor(after: plan.clientCursor)), upToDate: upToDate, closed: closed),
            into: &events)
        offset = next
        guard send(events) else { return }
        if closed {
            stop()
        } else if upToDate {
            attach()
        } else {
            readMore()
        }
    }

    private func readMore() {
        service.catchUpRead(stream: plan.stream, from: offset, credentials: plan.credentials, loop: loop)
            .assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let (head, body)) where head.status == .ok:
                    caughtUp(head.headers, body)
                default:
                    stop()
                }
            }
    }

    // MARK: - The shared subscription

    private func attach() {
        guard !finished else { return }
        let key = SSEFanout.key(stream: plan.stream, credentials: plan.credentials)
        let (tails, stream) = (service.tails, plan.stream)
        for _ in 0..<2 {
            let (subscription, created) = service.fanout.subscription(
                key, start: offset, head: plan.upstreamHead, loop: loop,
                observe: { offset, closed in tails.observe(stream, offset, closed: closed) })
            let loopBound = NIOLoopBound(self, eventLoop: loop)
            let subscriber = SSESubscriber(
                loop: loop,
                receive: { batch in loopBound.value.receive(batch) },
                ended: { loopBound.eventLoop.execute { loopBound.value.subscriptionEnded() } })
            guard let position = subscription.attach(id, subscriber) else { continue }  // it just finished: take a new one
            self.subscription = subscription
            if created {
                service.metrics.upstream(.sse)
                subscription.connect()
            }
            if !counted {
                counted = true
                service.metrics.request(.sse, created ? .miss : .collapsed, stream: plan.stream)
            }
            if position > offset {
                // The subscription is ahead: the cache brings this client up to it. If the last
                // detour from this same offset brought it nowhere, the cache cannot (a tail
                // answer not known to be out of date): end the response, and the client
                // reconnects, rather than loop here without end.
                if lastDetourFrom == offset { return stop() }
                lastDetourFrom = offset
                detachAndCatchUp()
            }
            return
        }
        readMore()
    }

    private func receive(_ batch: SSEBatch) {
        guard !finished, subscription != nil else { return }
        // A control event with no data (the upstream's greeting after each reconnect) tells
        // this client nothing it has not been told; only a closure is worth passing on.
        if batch.from == batch.to && !batch.closed { return }
        if batch.from == offset {
            offset = batch.to
            service.metrics.sent(bytes: batch.raw.readableBytes, fromCache: false, stream: plan.stream)
            guard send(events(of: batch)) else { return }
            if batch.closed { stop() }
        } else if batch.to <= offset {
            return  // already delivered through a catch-up read
        } else {
            detachAndCatchUp()  // the batch overlaps or skips our offset: the cache fills the gap exactly
        }
    }

    /// A cursor no lower than any this response has sent.
    private func forward(_ cursor: UInt64) -> UInt64 {
        let next = max(cursor, cursorFloor ?? 0)
        cursorFloor = next
        return next
    }

    /// The batch as this client gets it: the shared bytes as they are, unless the upstream's
    /// cursor is lower than one the client already has; then its control event is re-rendered.
    private func events(of batch: SSEBatch) -> ByteBuffer {
        guard let upstream = batch.control.cursor else { return batch.raw }
        let cursor = forward(upstream)
        guard cursor != upstream else { return batch.raw }
        var events = batch.data
        var control = batch.control
        control.cursor = cursor
        SSEEncoder.writeControl(control, into: &events)
        return events
    }

    private func detachAndCatchUp() {
        subscription?.detach(id)
        subscription = nil
        readMore()
    }

    private func subscriptionEnded() {
        guard !finished, subscription != nil else { return }
        subscription = nil
        // Closed streams end with their closing batch; otherwise let the client reconnect and
        // hear from the upstream directly (a deleted stream answers 404).
        stop()
    }

    /// Sends events; disconnects a client that has fallen too far behind.
    private func send(_ events: ByteBuffer) -> Bool {
        guard let output else {
            stop()
            return false
        }
        if output.send(events) > Self.backlogLimit {
            stop()
            return false
        }
        return true
    }
}
