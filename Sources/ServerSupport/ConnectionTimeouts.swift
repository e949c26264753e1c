import NIOCore

/// When a client connection has taken too long, as a plain value: fed what happens on the
/// connection, it answers with the one deadline that matters next, and when that deadline
/// passes, whether to close. `ConnectionGuardHandler` carries out what it decides.
///
/// The request side moves through four phases:
/// - `idle`: no request in progress; closed after `idleTimeout`, but only once every response
///   has left (a large answer still on its way to a slow reader is not idleness);
/// - `head`: the first bytes of a request have arrived; its head must be complete within
///   `headerTimeout` of them (a slowloris client sends a header line every few seconds);
/// - `body`: the head is in; no gap between its parts may last `bodyTimeout`, and once
///   `bodyTimeout` has passed it must keep up `minBodyBytesPerSecond` on average;
/// - `handling`: the request is complete and the server answers it (a long-poll or an SSE
///   response ends by the server's own timers).
///
/// On the response side, whenever bytes wait for the client (a response not yet all in the
/// socket, or anything queued), the client must take at least `minSendBytesPerSecond` of them
/// on average over each `sendTimeout`, or the connection goes: a client that stops reading, or
/// reads a segment a minute, cannot hold an answer in memory for long.
public struct ConnectionTimeouts: Sendable {
    public enum Phase: Equatable, Sendable {
        case idle(since: NIODeadline)
        case head(since: NIODeadline)
        /// `last`: when the last part of the body (or the head) arrived.
        case body(since: NIODeadline, bytes: Int, last: NIODeadline)
        case handling
    }

    /// Why a connection is closed.
    public enum Expiry: String, Equatable, Sendable, CaseIterable {
        /// Nothing asked for too long: close quietly.
        case idle
        /// The request's head or body came too slowly: answer 408, then close.
        case requestTimeout = "request_timeout"
        /// The client stopped reading our response: close (nothing more can reach it).
        case sendStalled = "send_stalled"
    }

    public let limits: ConnectionLimits
    public private(set) var phase: Phase
    /// Responses handed to the channel whose last byte has not reached the socket yet.
    private var responsesInFlight = 0
    /// Bytes arrived while a request was being handled: the next request has begun.
    private var nextRequestStarted = false
    /// The response side: whether the client takes what waits for it.
    private var send: SendStallWatch

    /// Whether output is being watched for a stalled client (`outputChanged` then needs no new
    /// count of what the client has taken while output stays pending).
    public var isWatchingSend: Bool { send.isWatching }

    public init(limits: ConnectionLimits, now: NIODeadline) {
        self.limits = limits
        self.phase = .idle(since: now)
        self.send = SendStallWatch(sendTimeout: limits.sendTimeout, minSendBytesPerSecond: limits.minSendBytesPerSecond)
    }

    // MARK: Events

    /// Raw bytes arrived from the client.
    public mutating func bytesArrived(now: NIODeadline) {
        switch phase {
        case .idle: phase = .head(since: now)
        case .handling: nextRequestStarted = true
        case .head, .body: break
        }
    }

    /// A request's head was decoded.
    public mutating func headReceived(now: NIODeadline) {
        phase = .body(since: now, bytes: 0, last: now)
    }

    /// Part of a request's body was decoded.
    public mutating func bodyReceived(_ count: Int, now: NIODeadline) {
        if case .body(let since, let bytes, _) = phase {
            let (sum, overflow) = bytes.addingReportingOverflow(max(0, count))
            phase = .body(since: since, bytes: overflow ? .max : sum, last: now)
        }
    }

    /// A request is complete; the server answers it now.
    public mutating func requestEnded() {
        phase = .handling
    }

    /// The last part of a response was handed to the channel.
    public mutating func responseEnded(now: NIODeadline) {
        responsesInFlight += 1
        guard case .handling = phase else { return }
        phase = nextRequestStarted ? .head(since: now) : .idle(since: now)
        nextRequestStarted = false
    }

    /// The last byte of a response reached the socket (or the write failed).
    public mutating func responseFlushed(now: NIODeadline) {
        responsesInFlight = max(0, responsesInFlight - 1)
        // Idleness counts from when the client has everything, not from when we finished.
        if responsesInFlight == 0, case .idle = phase { phase = .idle(since: now) }
    }

    /// Responses handed to the channel whose last byte has not reached the socket yet.
    public var hasResponsesInFlight: Bool { responsesInFlight > 0 }

    /// Whether bytes wait for the client now, and how many it has taken so far in all.
    public mutating func outputChanged(pending: Bool, drained: Int, now: NIODeadline) {
        send.outputChanged(pending: pending, drained: drained, now: now)
    }

    // MARK: Deadlines

    /// The next instant at which `expired(now:drained:)` must be asked, or `nil` for none.
    public var nextDeadline: NIODeadline? {
        let stallDeadline = send.deadline
        let requestDeadline: NIODeadline?
        switch phase {
        case .idle(let since):
            requestDeadline = responsesInFlight == 0 ? since + limits.idleTimeout : nil
        case .head(let since):
            requestDeadline = since + limits.headerTimeout
        case .body(let since, let bytes, let last):
            requestDeadline = bodyDeadline(since: since, bytes: bytes, last: last)
        case .handling:
            requestDeadline = nil
        }
        switch (stallDeadline, requestDeadline) {
        case (let a?, let b?): return min(a, b)
        case (let a?, nil): return a
        case (nil, let b): return b
        }
    }

    /// Whether the connection must close now; `drained` is how many bytes the client has taken
    /// in all. A reader that kept up the minimum rate since the last check gets another
    /// `sendTimeout`.
    public mutating func expired(now: NIODeadline, drained: Int) -> Expiry? {
        if send.isStalled(now: now, drained: drained) { return .sendStalled }
        switch phase {
        case .idle(let since):
            return responsesInFlight == 0 && now >= since + limits.idleTimeout ? .idle : nil
        case .head(let since):
            return now >= since + limits.headerTimeout ? .requestTimeout : nil
        case .body(let since, let bytes, let last):
            return now >= bodyDeadline(since: since, bytes: bytes, last: last) ? .requestTimeout : nil
        case .handling:
            return nil
        }
    }

    /// The earlier of: the end of the average-rate allowance (a trickle), and `bodyTimeout`
    /// after the last part (a stall: a burst up front must not buy hours of silence).
    private func bodyDeadline(since: NIODeadline, bytes: Int, last: NIODeadline) -> NIODeadline {
        let rate = since + limits.bodyTimeout + Self.timeFor(bytes: bytes, rate: limits.minBodyBytesPerSecond)
        return min(rate, last + limits.bodyTimeout)
    }

    /// How long `bytes` may take at `rate` bytes per second, without overflowing.
    static func timeFor(bytes: Int, rate: Int) -> TimeAmount {
        let seconds = bytes / max(1, rate)
        let remainder = bytes % max(1, rate)
        // A day is more than any body may take at any sane rate; capping keeps TimeAmount in range.
        guard seconds < 86_400 else { return .hours(24) }
        return .seconds(Int64(seconds)) + .nanoseconds(Int64(remainder) * 1_000_000_000 / Int64(max(1, rate)))
    }
}
