import DurableStreams
import Foundation
import NIOCore
import StreamStore

/// Carrying out what the wake machines ask: webhook deliveries, wake events, and the timers
/// that bring leases and retries back as events.
extension SubscriptionRegistry {
    /// Runs a machine's actions. The future completes when the wake events among them are
    /// written; deliveries and timers only start.
    func perform(_ id: String, _ actions: [WakeMachine.Action], on loop: any EventLoop) -> EventLoopFuture<Void> {
        var writes: [EventLoopFuture<Void>] = []
        // A new wake moved the generation: kept in the background (a restart skips ahead by
        // `restartGenerationGap` anyway, for wakes issued after the last write).
        let wakes = actions.count { if case .schedule = $0 { false } else { true } }
        if wakes > 0 {
            state.withLockedValue { $0.counts.wakes += wakes }
            _ = persist(on: loop)
        }
        for action in actions {
            switch action {
            case .deliver(let wake): deliver(id, wake)
            case .publish(let wake, let stream): writes.append(publish(id, wake, stream: stream, on: loop))
            case .schedule(let at): arm(id, at: at)
            }
        }
        return writes.isEmpty ? loop.makeSucceededVoidFuture() : EventLoopFuture.andAllComplete(writes, on: loop)
    }

    func publish(_ id: String, _ wake: Wake, stream: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard let wakeStream = state.withLockedValue({ $0.entries[id]?.configuration.wakeStream }) else { return loop.makeSucceededVoidFuture() }
        let event = SubscriptionJSON.wakeEvent(id: id, wake: wake, stream: stream, unixMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        let json = ContentType("application/json")!
        let command = AppendCommand(contentType: json, seq: nil, closed: false, producer: nil,
                                    body: Body.framing(ByteBuffer(bytes: event), as: json, allowEmptyArray: false))
        return store.append(wakeStream, command, on: loop).map { _ in
            self.state.withLockedValue { $0.counts.wakeEventsWritten += 1 }
        }.recover { [logger, state] error in
            state.withLockedValue { $0.counts.wakeEventFailures += 1 }
            // The wake stays claimable: a worker that claims without seeing the event still gets it.
            logger.warning("could not write a wake event", metadata: ["subscription": "\(id)", "wake_stream": "\(wakeStream)", "error": "\(error)"])
        }
    }

    func deliver(_ id: String, _ wake: Wake) {
        let prepared = state.withLockedValue { state -> (WebhookURL, [UInt8], TimeAmount)? in
            guard let entry = state.entries[id], case .webhook(let url) = entry.configuration.delivery else { return nil }
            let token = tokens.make(.init(subscription: id, incarnation: entry.machine.salt, generation: wake.generation,
                                          wakeID: wake.id, expires: Self.unixSeconds + CallbackTokens.lifetimeSeconds))
            let body = SubscriptionJSON.encode([
                "subscription_id": id, "wake_id": wake.id, "generation": wake.generation,
                "streams": SubscriptionJSON.streams(entry.machine.links.filter { wake.snapshot[$0.key] != nil }, snapshot: wake.snapshot),
                "callback_url": entry.baseURL + "__ds/subscriptions/\(id)/callback",
                "callback_token": token,
            ])
            return (url, body, Self.requestTimeout(leaseMilliseconds: entry.configuration.leaseMilliseconds))
        }
        guard let (url, body, timeout) = prepared else { return }
        let headers: [(String, String)]
        do {
            headers = [("Content-Type", "application/json"), ("Webhook-Signature", try signer.signatureHeader(body: body, unixSeconds: Self.unixSeconds))]
        } catch {
            logger.error("could not sign a webhook", metadata: ["error": "\(error)"])
            return
        }
        send(url, headers, body, timeout).whenComplete { result in
            let now = Self.monotonicNow
            let loop = self.group.next()
            let actions = self.state.withLockedValue { state -> [WakeMachine.Action] in
                guard state.entries[id] != nil else { return [] }
                switch result {
                case .success(let reply) where (200..<300).contains(reply.status):
                    state.counts.webhookDeliveries += 1
                    return state.entries[id]!.machine.delivered(wake.id, done: Self.saysDone(reply.body), now: now)
                case .success(let reply):
                    self.logger.info("webhook answered with an error", metadata: ["subscription": "\(id)", "status": "\(reply.status)"])
                case .failure(let error):
                    self.logger.info("webhook delivery failed", metadata: ["subscription": "\(id)", "error": "\(error)"])
                }
                state.counts.webhookFailures += 1
                return state.entries[id]!.machine.deliveryFailed(wake.id, now: now, jitter: Double.random(in: -0.2...0.2))
            }
            // Auto-acks and the retry schedule are kept; nobody waits for them.
            _ = self.persist(on: loop).flatMap { self.perform(id, actions, on: loop) }
        }
    }

    /// Below the lease, so a slow receiver's answer is known before its lease could end.
    static func requestTimeout(leaseMilliseconds: Int) -> TimeAmount {
        .milliseconds(Int64(min(max(leaseMilliseconds * 4 / 5, 500), 30_000)))
    }

    /// `{"done": true}` in a webhook's answer (§7.1).
    static func saysDone(_ body: [UInt8]) -> Bool {
        struct Reply: Decodable { var done: Bool? }
        return (try? JSONDecoder().decode(Reply.self, from: Data(body)))?.done == true
    }

    /// Makes sure `tick` runs for subscription `id` at `at` (one timer per subscription, the
    /// earliest wanted; each tick arms the next deadline its machine has).
    func arm(_ id: String, at: UInt64) {
        let previous = state.withLockedValue { state -> Scheduled<Void>?? in
            guard !state.stopped, let entry = state.entries[id] else { return .none }
            if let armed = entry.timerAt, armed <= at, entry.timer != nil { return .none }
            let loop = group.next()
            let timer = loop.scheduleTask(deadline: .uptimeNanoseconds(at)) { self.tick(id, at: at) }
            state.entries[id]!.timer = timer
            state.entries[id]!.timerAt = at
            return .some(entry.timer)
        }
        if case .some(let old) = previous { old?.cancel() }
    }

    func tick(_ id: String, at: UInt64) {
        let now = Self.monotonicNow
        let (actions, next) = state.withLockedValue { state -> ([WakeMachine.Action], UInt64?) in
            guard !state.stopped, state.entries[id]?.timerAt == at else { return ([], nil) }
            state.entries[id]!.timer = nil
            state.entries[id]!.timerAt = nil
            let actions = state.entries[id]!.machine.tick(now: now)
            return (actions, state.entries[id]!.machine.nextDeadline)
        }
        _ = perform(id, actions, on: group.next())
        // Never at once again: a deadline a tick left in the past would otherwise spin.
        if let next { arm(id, at: max(next, now &+ 1_000_000)) }
    }
}
