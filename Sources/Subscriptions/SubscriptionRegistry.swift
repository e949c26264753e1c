import DurableStreams
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import StreamStore

/// Every subscription of one server and the work §7 gives them: it keeps each subscription's
/// configuration and `WakeMachine`, feeds the machines the stream events the server reports,
/// and performs what they ask — webhook deliveries, wake events, lease and retry timers.
///
/// Machines change under one lock, never held across I/O: the actions they return run after
/// it is released, and the answers (a webhook's reply, a timer) come back as new events.
public final class SubscriptionRegistry: Sendable {
    /// Sends one webhook request; the reply's status and body, or a failure.
    public typealias Send = @Sendable (_ url: WebhookURL, _ headers: [(String, String)], _ body: [UInt8], _ timeout: TimeAmount)
        -> EventLoopFuture<(status: Int, body: [UInt8])>

    /// How many subscriptions a server keeps at most: each costs memory and a check per append.
    public static let maxSubscriptions = 10_000
    /// How far generations skip ahead at a restart: wakes issued after the last write of the
    /// state had numbers the file does not know, and a generation is never used twice.
    static let restartGenerationGap = 1_000
    static let maxIDBytes = 128
    static let maxWorkerBytes = 256

    struct Entry {
        var configuration: SubscriptionConfiguration
        var hash: String
        var machine: WakeMachine
        var createdAt: String
        /// The stream root clients used when making it (`http://host/v1/stream/`): where its
        /// webhooks point callbacks.
        var baseURL: String
        var timer: Scheduled<Void>?
        var timerAt: UInt64?
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Wake streams of pull-wake subscriptions (with how many use each): never matched by
        /// a pattern, so a `**` subscription cannot wake itself.
        var wakeStreams: [String: Int] = [:]
        var stopped = false
        var counts = SubscriptionStatistics()
        /// Numbers each state handed to the journal, so an older one never overwrites a newer.
        var savedSequence: UInt64 = 0
    }

    let state = NIOLockedValueBox(State())
    let store: any StreamStore
    public let signer: WebhookSigner
    let tokens: CallbackTokens
    let send: Send
    let group: any EventLoopGroup
    let logger: Logger
    /// Where the state is kept across restarts; `nil`: in memory only.
    let journal: SubscriptionJournal?

    public init(
        store: any StreamStore, signer: WebhookSigner, tokens: CallbackTokens, group: any EventLoopGroup, logger: Logger,
        journal: SubscriptionJournal? = nil, send: @escaping Send
    ) {
        self.journal = journal
        self.store = store
        self.signer = signer
        self.tokens = tokens
        self.group = group
        self.logger = logger
        self.send = send
    }

    /// Stops every timer; later events are ignored.
    public func shutdown() {
        let timers = state.withLockedValue { state in
            state.stopped = true
            return state.entries.values.compactMap(\.timer)
        }
        for timer in timers { timer.cancel() }
    }

    static var monotonicNow: UInt64 { NIODeadline.now().uptimeNanoseconds }
    static var unixSeconds: Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: - The subscription resource (§6)

    /// `PUT`: creates (`created`), re-confirms an identical one, or refuses a different one.
    public func put(_ id: String, _ configuration: SubscriptionConfiguration, baseURL: String, on loop: any EventLoop)
        -> EventLoopFuture<(created: Bool, body: [UInt8])>
    {
        do throws(SubscriptionError) {
            try Self.checkID(id)
            let hash = configuration.hash
            let existing: Result<[UInt8]?, SubscriptionError> = state.withLockedValue { state in
                if let entry = state.entries[id] {
                    guard entry.hash == hash else {
                        return .failure(SubscriptionError(status: 409, code: "SUBSCRIPTION_ALREADY_EXISTS",
                                                          "a subscription with this id exists with another configuration"))
                    }
                    return .success(self.body(id, entry, baseURL: baseURL))
                }
                guard state.entries.count < Self.maxSubscriptions else {
                    return .failure(SubscriptionError(status: 507, code: "INVALID_REQUEST", "this server holds as many subscriptions as it may"))
                }
                let kind: WakeMachine.Kind
                switch configuration.delivery {
                case .webhook: kind = .webhook
                case .pullWake(let stream):
                    kind = .pullWake(wakeStream: stream)
                    state.wakeStreams[stream, default: 0] += 1
                }
                let salt = String(UInt32.random(in: .min ... .max), radix: 16)
                state.entries[id] = Entry(
                    configuration: configuration, hash: hash,
                    machine: WakeMachine(kind: kind, leaseNanos: UInt64(configuration.leaseMilliseconds) * 1_000_000, salt: salt),
                    createdAt: SubscriptionJSON.timestamp(Date()), baseURL: baseURL)
                return .success(nil)
            }
            if let body = try existing.get() { return loop.makeSucceededFuture((false, body)) }
        } catch {
            return loop.makeFailedFuture(error)
        }
        // Link what exists now at its tail: creating a subscription replays no history (§6.2).
        let wakeStreams = state.withLockedValue { $0.wakeStreams }
        var globbed: [String] = []
        if let pattern = configuration.pattern {
            globbed = store.streamNames.filter { pattern.matches($0) && wakeStreams[$0] == nil && !SubscriptionPaths.isReserved($0) }
        }
        return linkAtTails(id, explicit: configuration.streams, globbed: globbed, on: loop).flatMap {
            self.persist(on: loop)
        }.flatMapThrowing { _ in
            guard let body = self.state.withLockedValue({ state in state.entries[id].map { self.body(id, $0, baseURL: baseURL) } }) else {
                throw Self.notFound
            }
            return (true, body)
        }
    }

    public func get(_ id: String, baseURL: String) throws(SubscriptionError) -> [UInt8] {
        guard let body = state.withLockedValue({ state in state.entries[id].map { body(id, $0, baseURL: baseURL) } }) else {
            throw Self.notFound
        }
        return body
    }

    /// `DELETE`: the subscription is gone; its wake's callbacks, acks and releases now fail.
    public func delete(_ id: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        do throws(SubscriptionError) {
            try remove(id)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return persist(on: loop)
    }

    func remove(_ id: String) throws(SubscriptionError) {
        let removed = state.withLockedValue { state -> Entry? in
            guard let entry = state.entries.removeValue(forKey: id) else { return nil }
            if let stream = entry.configuration.wakeStream {
                state.wakeStreams[stream, default: 1] -= 1
                if state.wakeStreams[stream] == 0 { state.wakeStreams[stream] = nil }
            }
            return entry
        }
        guard let removed else { throw Self.notFound }
        removed.timer?.cancel()
    }

    /// `POST …/streams`: explicit links at the streams' tails (§6.4).
    public func addStreams(_ id: String, _ paths: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
        let exists = state.withLockedValue { $0.entries[id] != nil }
        guard exists else { return loop.makeFailedFuture(Self.notFound) }
        return linkAtTails(id, explicit: paths, globbed: [], on: loop).flatMap { self.persist(on: loop) }
    }

    /// `DELETE …/streams/:path`: drops the explicit link only.
    public func removeStream(_ id: String, _ path: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        do throws(SubscriptionError) {
            try unlink(id, path)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return persist(on: loop)
    }

    func unlink(_ id: String, _ path: String) throws(SubscriptionError) {
        let found = state.withLockedValue { state -> Bool in
            guard state.entries[id] != nil else { return false }
            state.entries[id]!.machine.unlinkExplicit(path)
            return true
        }
        guard found else { throw Self.notFound }
    }

    // MARK: - Delivery (§7)

    /// A webhook handler's callback (`POST …/callback`).
    public func callback(_ id: String, bearer: String?, body: [UInt8], on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        acknowledge(id, bearer: bearer, body: body, expectPullWake: false, on: loop)
    }

    /// A pull-wake worker's ack or heartbeat (`POST …/ack`).
    public func ack(_ id: String, bearer: String?, body: [UInt8], on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        acknowledge(id, bearer: bearer, body: body, expectPullWake: true, on: loop)
    }

    /// `POST …/claim`: the worker's lease on the current wake and a token for its acks.
    public func claim(_ id: String, body: [UInt8], on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        struct Request: Decodable { var worker: String? }
        let worker: String
        do {
            let request = body.isEmpty ? Request(worker: nil) : try JSONDecoder().decode(Request.self, from: Data(body))
            worker = request.worker ?? "anonymous"
        } catch {
            return loop.makeFailedFuture(Self.invalidBody)
        }
        guard !worker.isEmpty, worker.utf8.count <= Self.maxWorkerBytes else {
            return loop.makeFailedFuture(SubscriptionError(status: 400, code: "INVALID_REQUEST", "worker must be 1 to \(Self.maxWorkerBytes) bytes"))
        }
        let now = Self.monotonicNow
        let result = state.withLockedValue { state -> Result<([UInt8], [WakeMachine.Action]), SubscriptionError> in
            guard var entry = state.entries[id] else { return .failure(Self.notFound) }
            do throws(SubscriptionError) {
                let (wake, actions) = try entry.machine.claim(worker: worker, now: now)
                state.entries[id] = entry
                let token = tokens.make(.init(subscription: id, incarnation: entry.machine.salt, generation: wake.generation,
                                              wakeID: wake.id, expires: Self.unixSeconds + CallbackTokens.lifetimeSeconds))
                let reply = SubscriptionJSON.encode([
                    "wake_id": wake.id, "generation": wake.generation, "token": token,
                    "streams": SubscriptionJSON.streams(entry.machine.links.filter { wake.snapshot[$0.key] != nil }, snapshot: wake.snapshot),
                    "lease_ttl_ms": entry.configuration.leaseMilliseconds,
                ])
                return .success((reply, actions))
            } catch {
                if error.code == "FENCED" { state.counts.fenced += 1 }
                return .failure(error)
            }
        }
        switch result {
        case .success(let (reply, actions)):
            return perform(id, actions, on: loop).map { reply }
        case .failure(let error):
            return loop.makeFailedFuture(error)
        }
    }

    /// `POST …/release`: the worker gives the wake back; pending work is published again.
    public func release(_ id: String, bearer: String?, body: [UInt8], on loop: any EventLoop) -> EventLoopFuture<Void> {
        struct Request: Decodable { var wake_id: String; var generation: Int }
        guard let request = try? JSONDecoder().decode(Request.self, from: Data(body)) else {
            return loop.makeFailedFuture(Self.invalidBody)
        }
        let now = Self.monotonicNow
        let result = state.withLockedValue { state -> Result<[WakeMachine.Action], SubscriptionError> in
            guard var entry = state.entries[id] else { return .failure(Self.notFound) }
            do throws(SubscriptionError) {
                let claims = try self.claims(bearer, id: id, entry: entry)
                let actions = try entry.machine.release(
                    wakeID: request.wake_id, generation: request.generation,
                    tokenGeneration: claims.wakeID == request.wake_id ? claims.generation : -1, now: now)
                state.entries[id] = entry
                return .success(actions)
            } catch {
                if error.code == "FENCED" { state.counts.fenced += 1 }
                return .failure(error)
            }
        }
        switch result {
        case .success(let actions): return perform(id, actions, on: loop)
        case .failure(let error): return loop.makeFailedFuture(error)
        }
    }

    // MARK: - What the server reports about streams

    /// A stream was created with its tail at `tail`; `linkAt` is where a new link starts (the
    /// beginning for a stream created with data, which is then pending).
    public func streamCreated(_ path: String, linkAt: StreamOffset, tail: StreamOffset, on loop: any EventLoop) -> EventLoopFuture<Void> {
        streamChanged(path, on: loop) { machine, globMatch, now in
            if machine.links[path] != nil {
                return machine.advanced(path, tail: tail, now: now)
            }
            return globMatch ? machine.link(path, explicit: false, acked: linkAt, tail: tail, now: now) : []
        }
    }

    /// Data was appended; the future completes once any wake event it caused is written, so a
    /// reader who saw the append's answer can already read the wake.
    public func streamAppended(_ path: String, tail: StreamOffset, on loop: any EventLoop) -> EventLoopFuture<Void> {
        streamChanged(path, on: loop) { machine, globMatch, now in
            if machine.links[path] != nil {
                return machine.advanced(path, tail: tail, now: now)
            }
            // A matching stream no link has seen (made while the subscription was being
            // created): linked before this append, from the beginning.
            return globMatch ? machine.link(path, explicit: false, acked: .zero, tail: tail, now: now) : []
        }
    }

    public func streamDeleted(_ path: String) {
        state.withLockedValue { state in
            for id in state.entries.keys where state.entries[id]!.machine.links[path] != nil {
                state.entries[id]!.machine.streamDeleted(path)
            }
        }
    }

    /// Counts for metrics.
    public var statistics: SubscriptionStatistics {
        state.withLockedValue { state in
            var statistics = state.counts
            statistics.subscriptions = state.entries.count
            statistics.failing = state.entries.values.count { $0.machine.status == "failed" }
            return statistics
        }
    }

    /// Whether `path` is a pull-wake subscription's wake stream.
    public func isWakeStream(_ path: String) -> Bool {
        state.withLockedValue { $0.wakeStreams[path] != nil }
    }

    /// Whether any subscription exists: the stream routes skip all of this when none does.
    public var isEmpty: Bool { state.withLockedValue { $0.entries.isEmpty } }

    // MARK: - Internals

    static let notFound = SubscriptionError(status: 404, code: "SUBSCRIPTION_NOT_FOUND", "no such subscription")
    static let invalidBody = SubscriptionError(status: 400, code: "INVALID_REQUEST", "the body is not the JSON this request takes")

    static func checkID(_ id: String) throws(SubscriptionError) {
        let allowed = id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: ":"):
                return true
            default:
                return false
            }
        }
        guard !id.isEmpty, id.utf8.count <= maxIDBytes, allowed else {
            throw SubscriptionError(status: 400, code: "INVALID_REQUEST", "a subscription id is 1 to 128 of A-Z a-z 0-9 - _ . ~ :")
        }
    }

    func body(_ id: String, _ entry: Entry, baseURL: String) -> [UInt8] {
        var signing: [String: Any]?
        if case .webhook = entry.configuration.delivery {
            signing = ["alg": "ed25519", "kid": signer.current.kid, "jwks_url": baseURL + "__ds/jwks.json"]
        }
        return SubscriptionJSON.encode(SubscriptionJSON.subscription(
            id: id, entry.configuration, machine: entry.machine, createdAt: entry.createdAt, signing: signing))
    }

    func claims(_ bearer: String?, id: String, entry: Entry) throws(SubscriptionError) -> CallbackTokens.Claims {
        guard let bearer else { throw SubscriptionError(status: 401, code: "TOKEN_INVALID", "a bearer token is required") }
        let claims = try tokens.verify(bearer, nowSeconds: Self.unixSeconds)
        guard claims.subscription == id, claims.incarnation == entry.machine.salt else { throw CallbackTokens.invalid }
        return claims
    }

    func acknowledge(_ id: String, bearer: String?, body: [UInt8], expectPullWake: Bool, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        struct Ack: Decodable { var stream: String?; var path: String?; var offset: String }
        struct Request: Decodable { var wake_id: String; var generation: Int; var acks: [Ack]?; var done: Bool? }
        guard let request = try? JSONDecoder().decode(Request.self, from: Data(body)) else {
            return loop.makeFailedFuture(Self.invalidBody)
        }
        var acks: [(stream: String, offset: StreamOffset)] = []
        for ack in request.acks ?? [] {
            guard let stream = ack.stream ?? ack.path, let offset = StreamOffset(ack.offset) else {
                return loop.makeFailedFuture(SubscriptionError(status: 409, code: "INVALID_OFFSET", "each ack needs a stream and an offset this server made"))
            }
            acks.append((stream, offset))
        }
        let now = Self.monotonicNow
        let result = state.withLockedValue { state -> Result<WakeMachine.Acknowledged, SubscriptionError> in
            guard var entry = state.entries[id] else { return .failure(Self.notFound) }
            do throws(SubscriptionError) {
                let claims = try self.claims(bearer, id: id, entry: entry)
                let isPullWake = entry.configuration.wakeStream != nil
                guard isPullWake == expectPullWake else {
                    return .failure(SubscriptionError(status: 400, code: "INVALID_REQUEST",
                                                      isPullWake ? "pull-wake subscriptions ack at …/ack" : "webhook subscriptions call back at …/callback"))
                }
                let acknowledged = try entry.machine.acknowledge(
                    wakeID: request.wake_id, generation: request.generation,
                    tokenGeneration: claims.wakeID == request.wake_id ? claims.generation : -1,
                    acks: acks, done: request.done == true, now: now)
                state.entries[id] = entry
                return .success(acknowledged)
            } catch {
                if error.code == "FENCED" { state.counts.fenced += 1 }
                return .failure(error)
            }
        }
        switch result {
        case .success(let acknowledged):
            let reply = SubscriptionJSON.encode(["ok": true, "next_wake": acknowledged.nextWake])
            // The acks are kept before they are confirmed.
            return persist(on: loop).flatMap { self.perform(id, acknowledged.actions, on: loop) }.map { reply }
        case .failure(let error):
            return loop.makeFailedFuture(error)
        }
    }

    /// Applies `change` to every subscription that links `path` or whose pattern matches it.
    func streamChanged(
        _ path: String, on loop: any EventLoop, _ change: (inout WakeMachine, _ globMatch: Bool, _ now: UInt64) -> [WakeMachine.Action]
    ) -> EventLoopFuture<Void> {
        guard !SubscriptionPaths.isReserved(path) else { return loop.makeSucceededVoidFuture() }
        let now = Self.monotonicNow
        let (work, linked) = state.withLockedValue { state -> ([(String, [WakeMachine.Action])], Bool) in
            guard !state.stopped, !state.entries.isEmpty else { return ([], false) }
            let isWakeStream = state.wakeStreams[path] != nil
            var work: [(String, [WakeMachine.Action])] = []
            var linked = false
            for id in state.entries.keys {
                let globMatch = !isWakeStream && state.entries[id]!.configuration.pattern?.matches(path) == true
                let wasLinked = state.entries[id]!.machine.links[path] != nil
                guard globMatch || wasLinked else { continue }
                let actions = change(&state.entries[id]!.machine, globMatch, now)
                linked = linked || (!wasLinked && state.entries[id]!.machine.links[path] != nil)
                if !actions.isEmpty { work.append((id, actions)) }
            }
            return (work, linked)
        }
        // A new link is kept before the write that made it is answered: after a crash its
        // data is still pending. (Tails are not kept: the store has them.)
        let kept = linked ? persist(on: loop) : loop.makeSucceededVoidFuture()
        guard !work.isEmpty else { return kept }
        return kept.flatMap { EventLoopFuture.andAllComplete(work.map { self.perform($0.0, $0.1, on: loop) }, on: loop) }
    }

    /// Links streams at their current tails (a stream that does not exist yet at the beginning).
    func linkAtTails(_ id: String, explicit: [String], globbed: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
        let wanted = explicit.map { ($0, true) } + globbed.map { ($0, false) }
        let lookups = wanted.map { name, isExplicit in
            store.info(name, on: loop).map { Optional($0.tail) }.recover { _ in nil }.map { (name, isExplicit, $0) }
        }
        return EventLoopFuture.whenAllSucceed(lookups, on: loop).flatMap { found in
            let now = Self.monotonicNow
            let actions = self.state.withLockedValue { state -> [WakeMachine.Action] in
                guard state.entries[id] != nil else { return [] }
                var actions: [WakeMachine.Action] = []
                for (name, isExplicit, tail) in found {
                    // A globbed stream that vanished meanwhile is not linked; an explicit one
                    // waits at the beginning for the stream to be made.
                    guard isExplicit || tail != nil else { continue }
                    actions += state.entries[id]!.machine.link(name, explicit: isExplicit, acked: tail ?? .zero, tail: tail ?? .zero, now: now)
                }
                return actions
            }
            return self.perform(id, actions, on: loop)
        }
    }
}
