import DurableStreams

/// One stream a subscription follows (§6.1): how it was linked, what has been processed
/// (`acked`, inclusive) and how far the stream has got (`tail`).
public struct StreamLink: Sendable, Equatable {
    public var explicit: Bool
    public var glob: Bool
    public var acked: StreamOffset
    public var tail: StreamOffset

    public init(explicit: Bool, glob: Bool, acked: StreamOffset, tail: StreamOffset) {
        self.explicit = explicit
        self.glob = glob
        self.acked = acked
        self.tail = tail
    }

    /// `explicit` wins when both hold (§6.1).
    public var linkType: String { explicit ? "explicit" : "glob" }
    public var hasPending: Bool { tail > acked }
}

/// One wake (§7): its fencing pair, the tails it was issued for, and for pull-wake the worker
/// holding it.
public struct Wake: Sendable, Equatable {
    public var id: String
    public var generation: Int
    /// The tail of each linked stream with pending work when the wake was issued: what
    /// `{done: true}` acks.
    public var snapshot: [String: StreamOffset]
    /// The pull-wake worker that claimed it.
    public var holder: String?
    /// When the lease ends (monotonic nanoseconds); `nil` for a pull wake nobody has claimed.
    public var leaseDeadline: UInt64?
}

/// The delivery rules of §7 for one subscription, as a plain value: events go in, the state
/// changes and the actions the caller must perform come out. No I/O, no clock, no randomness:
/// the caller passes the monotonic time and the retry jitter, and ids derive from a salt.
///
/// - Pending work (a linked stream's tail past its acked offset) on an idle subscription
///   issues a wake with the next generation; only one wake is in flight at a time.
/// - Webhook wakes hold a lease from issue; pull wakes from their claim. Callbacks, and acks
///   without `done`, extend it; when it ends the wake is dropped and pending work wakes again.
/// - Every callback, ack or release must name the current generation and wake id, with a token
///   of that generation, or it is fenced; acks are inclusive and never move a cursor back.
/// - A failed webhook delivery drops the wake and retries after 1 s, 2 s, 4 s … up to 60 s,
///   each ±20 % jitter, during which `status` is `failed`.
public struct WakeMachine: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case webhook
        case pullWake(wakeStream: String)
    }

    public enum Action: Sendable, Equatable {
        /// POST this wake to the webhook.
        case deliver(Wake)
        /// Append a wake event for this wake, naming `stream`, to the wake stream.
        case publish(Wake, stream: String)
        /// Call `tick(now:)` at or after this monotonic time.
        case schedule(at: UInt64)
    }

    /// What fencing accepted from a callback, ack or release.
    public struct Acknowledged: Sendable, Equatable {
        /// Whether pending work remains (a new wake follows at once when idle).
        public var nextWake: Bool
        public var actions: [Action]

        public init(nextWake: Bool, actions: [Action]) {
            self.nextWake = nextWake
            self.actions = actions
        }
    }

    public static let firstRetryNanos: UInt64 = 1_000_000_000
    public static let maxRetryNanos: UInt64 = 60_000_000_000

    public let kind: Kind
    public let leaseNanos: UInt64
    /// Makes wake ids unique across subscriptions that reuse an id after a delete.
    public let salt: String
    public private(set) var links: [String: StreamLink] = [:]
    public private(set) var generation = 0
    public private(set) var wake: Wake?
    /// Failed deliveries since the last success (webhook).
    public private(set) var failures = 0
    /// When the next delivery attempt may start after a failure.
    public private(set) var retryAt: UInt64?

    public init(kind: Kind, leaseNanos: UInt64, salt: String, generation: Int = 0) {
        self.kind = kind
        self.leaseNanos = leaseNanos
        self.salt = salt
        self.generation = generation
    }

    /// A machine as a restart finds it: links and counters as kept, no wake in flight (its
    /// lease was on the old process's clock, and its worker's token is for the old salt).
    /// Pending work wakes at the first `tick`.
    public init(kind: Kind, leaseNanos: UInt64, salt: String, generation: Int, links: [String: StreamLink], failures: Int, retryAt: UInt64?) {
        self.init(kind: kind, leaseNanos: leaseNanos, salt: salt, generation: generation)
        self.links = links
        self.failures = failures
        self.retryAt = retryAt
    }

    /// `failed` from a failed webhook delivery until one succeeds (§6.3: while retries are
    /// scheduled).
    public var status: String { failures > 0 ? "failed" : "active" }

    public var hasPending: Bool { links.values.contains { $0.hasPending } }

    /// The next time `tick(now:)` has something to do: a lease ending or a retry due.
    public var nextDeadline: UInt64? {
        [wake?.leaseDeadline, retryAt].compactMap { $0 }.min()
    }

    // MARK: - Links

    /// Links a stream (or adds a second reason to an existing link, keeping its cursor).
    /// `acked` and `tail` are where a new link starts: its tail for a stream that existed, the
    /// stream's beginning for one created with data (§6.2: linked before that first append).
    public mutating func link(_ path: String, explicit: Bool, acked: StreamOffset, tail: StreamOffset, now: UInt64) -> [Action] {
        if var existing = links[path] {
            existing.explicit = existing.explicit || explicit
            existing.glob = existing.glob || !explicit
            existing.tail = max(existing.tail, tail)
            links[path] = existing
        } else {
            links[path] = StreamLink(explicit: explicit, glob: !explicit, acked: min(acked, tail), tail: tail)
        }
        return wakeIfPending(now: now)
    }

    /// Removes an explicit link; a glob link of the same stream stays (§6.4).
    public mutating func unlinkExplicit(_ path: String) {
        guard var existing = links[path] else { return }
        if existing.glob {
            existing.explicit = false
            links[path] = existing
        } else {
            links[path] = nil
        }
    }

    /// A linked stream's tail moved.
    public mutating func advanced(_ path: String, tail: StreamOffset, now: UInt64) -> [Action] {
        guard var existing = links[path], tail > existing.tail else { return [] }
        existing.tail = tail
        links[path] = existing
        return wakeIfPending(now: now)
    }

    /// A linked stream was deleted: a stream made again under the name starts from nothing, and
    /// all of its data is new.
    public mutating func streamDeleted(_ path: String) {
        guard var existing = links[path] else { return }
        existing.acked = .zero
        existing.tail = .zero
        links[path] = existing
    }

    // MARK: - Webhook delivery

    /// The webhook answered 2xx; `done` when its body was `{"done": true}` (§7.1), which acks
    /// the wake's snapshot and ends it.
    public mutating func delivered(_ wakeID: String, done: Bool, now: UInt64) -> [Action] {
        guard wake?.id == wakeID else { return [] }
        failures = 0
        retryAt = nil
        guard done, let finished = wake else { return [] }
        for (path, offset) in finished.snapshot {
            guard var existing = links[path] else { continue }
            existing.acked = max(existing.acked, min(offset, existing.tail))
            links[path] = existing
        }
        wake = nil
        return wakeIfPending(now: now)
    }

    /// The delivery failed (no answer, an error status, a refused address): the wake ends and a
    /// new one is tried after the back-off. `jitter` is in -0.2...0.2.
    public mutating func deliveryFailed(_ wakeID: String, now: UInt64, jitter: Double) -> [Action] {
        guard wake?.id == wakeID else { return [] }
        wake = nil
        failures += 1
        let delay = Self.retryDelay(failures: failures, jitter: jitter)
        retryAt = now &+ delay
        return [.schedule(at: now &+ delay)]
    }

    /// The back-off after `failures` failed attempts (at least one), jitter applied.
    public static func retryDelay(failures: Int, jitter: Double) -> UInt64 {
        let doublings = min(max(failures - 1, 0), 6)
        let base = min(firstRetryNanos << UInt64(doublings), maxRetryNanos)
        let factor = 1 + min(max(jitter, -0.2), 0.2)
        return UInt64(Double(base) * factor)
    }

    // MARK: - Pull-wake

    /// A worker asks for the subscription (§7.2). Issues a wake at once if there is pending
    /// work and none is in flight (its wake event may not have been written or read yet).
    public mutating func claim(worker: String, now: UInt64) throws(SubscriptionError) -> (Wake, [Action]) {
        guard case .pullWake = kind else {
            throw SubscriptionError(status: 400, code: "INVALID_REQUEST", "only pull-wake subscriptions are claimed")
        }
        if let holder = wake?.holder {
            throw SubscriptionError(status: 409, code: "ALREADY_CLAIMED", "another worker holds the lease",
                                    details: ["current_holder": .string(holder), "generation": .int(generation)])
        }
        if wake == nil {
            guard hasPending else { throw SubscriptionError(status: 409, code: "NO_PENDING_WORK", "the subscription has no pending work") }
            wake = newWake()
        }
        let deadline = now &+ leaseNanos
        wake?.holder = worker
        wake?.leaseDeadline = deadline
        return (wake!, [.schedule(at: deadline)])
    }

    // MARK: - Callbacks, acks, releases

    /// A webhook callback or a pull-wake ack (§7.1, §7.2): fenced, then the acks applied (all
    /// or none), then either the lease extended or, with `done`, the wake ended.
    public mutating func acknowledge(
        wakeID: String, generation asked: Int, tokenGeneration: Int, acks: [(stream: String, offset: StreamOffset)], done: Bool, now: UInt64
    ) throws(SubscriptionError) -> Acknowledged {
        try fence(wakeID: wakeID, generation: asked, tokenGeneration: tokenGeneration)
        if case .pullWake = kind, wake?.holder == nil { throw Self.fenced }
        var updated = links
        for ack in acks {
            guard var existing = updated[ack.stream] else {
                throw SubscriptionError(status: 409, code: "INVALID_OFFSET", "ack names a stream the subscription does not follow")
            }
            guard ack.offset >= existing.acked else {
                throw SubscriptionError(status: 409, code: "INVALID_OFFSET", "ack moves the cursor back")
            }
            guard ack.offset <= existing.tail else {
                throw SubscriptionError(status: 409, code: "INVALID_OFFSET", "ack is beyond the stream's tail")
            }
            existing.acked = ack.offset
            updated[ack.stream] = existing
        }
        links = updated
        guard done else {
            let deadline = now &+ leaseNanos
            wake?.leaseDeadline = deadline
            return Acknowledged(nextWake: hasPending, actions: [.schedule(at: deadline)])
        }
        wake = nil
        failures = 0
        retryAt = nil
        return Acknowledged(nextWake: hasPending, actions: wakeIfPending(now: now))
    }

    /// A pull-wake worker gives the wake up without acking (§7.2).
    public mutating func release(wakeID: String, generation asked: Int, tokenGeneration: Int, now: UInt64) throws(SubscriptionError) -> [Action] {
        try fence(wakeID: wakeID, generation: asked, tokenGeneration: tokenGeneration)
        wake = nil
        return wakeIfPending(now: now)
    }

    // MARK: - Time

    /// Ends an expired lease and starts a retry that is due; either may issue a new wake.
    public mutating func tick(now: UInt64) -> [Action] {
        if let deadline = wake?.leaseDeadline, deadline <= now {
            wake = nil
        }
        return wakeIfPending(now: now)
    }

    // MARK: - Internals

    private static let fenced = SubscriptionError(status: 409, code: "FENCED", "the wake is no longer current")

    private func fence(wakeID: String, generation asked: Int, tokenGeneration: Int) throws(SubscriptionError) {
        guard let wake, wake.id == wakeID, wake.generation == asked, tokenGeneration == asked else { throw Self.fenced }
    }

    private mutating func newWake() -> Wake {
        generation += 1
        // Only streams with work: what a worker must read, and all that `done` acks (a wake of a
        // `**` subscription over many idle streams stays small).
        var snapshot: [String: StreamOffset] = [:]
        for (path, link) in links where link.hasPending { snapshot[path] = link.tail }
        return Wake(id: "w_\(salt)_\(generation)", generation: generation, snapshot: snapshot, holder: nil, leaseDeadline: nil)
    }

    private mutating func wakeIfPending(now: UInt64) -> [Action] {
        guard wake == nil, hasPending else { return [] }
        if let retryAt, retryAt > now { return [] }
        // A due retry is used up by this attempt; its outcome sets the next.
        retryAt = nil
        var issued = newWake()
        switch kind {
        case .webhook:
            let deadline = now &+ leaseNanos
            issued.leaseDeadline = deadline
            wake = issued
            return [.deliver(issued), .schedule(at: deadline)]
        case .pullWake:
            wake = issued
            let first = links.filter { $0.value.hasPending }.keys.min() ?? ""
            return [.publish(issued, stream: first)]
        }
    }
}
