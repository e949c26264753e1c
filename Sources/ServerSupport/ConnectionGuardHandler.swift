import NIOCore
import NIOHTTP1

/// Carries out `ConnectionTimeouts` on one connection: keeps one timer at the next deadline,
/// answers 408 to a request that arrives too slowly, closes connections that idle too long or
/// whose client stopped reading.
///
/// It sits after the pipelining handler, so it sees requests one at a time as the server handles
/// them, and hears when each response is written (`ResponseWritten`). Raw bytes arriving before a request's head is
/// decoded are reported to it by `ConnectionWireHandler`, placed in front of the decoder.
public final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// Sent inbound by `ConnectionWireHandler` when bytes arrive from the client.
    public struct BytesArrived: Sendable {
        public init() {}
    }

    private var timeouts: ConnectionTimeouts
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var closing = false
    /// Responses whose last byte reached the socket (or failed): tells whether one did at once.
    private var flushes = 0
    /// Inside `triggerUserOutboundEvent` for a `ResponseWritten`: a flush that completes here
    /// completed within the response's own write, so the socket took everything queued.
    private var takingResponse = false
    /// Set between `handlerAdded` and `handlerRemoved`.
    private var context: ChannelHandlerContext?

    private let onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)?
    /// Counts the bytes written to the socket's queue, so that what the client has taken is that
    /// count less what still waits. `nil` only in tests without a wire.
    private let wire: ConnectionWireHandler?
    /// An HTTP/2 stream's count of the bytes that have left it.
    private let sent: SentBytes?

    /// Bytes queued in a channel for its socket.
    private let queuedBytes: (any Channel) -> Int

    /// - Parameters:
    ///   - wire: the connection's wire handler (it counts the bytes written).
    ///   - queuedBytes: how many bytes wait in the channel; by default the socket channel's own
    ///     count (an EmbeddedChannel cannot count its queue: tests pass their own).
    ///   - onExpiry: told each time the guard closes a connection (for metrics).
    /// - Parameter sent: on an HTTP/2 stream, what its responses have sent (instead of `wire`).
    public init(
        limits: ConnectionLimits, wire: ConnectionWireHandler? = nil, sent: SentBytes? = nil,
        queuedBytes: @escaping (any Channel) -> Int = ConnectionGuardHandler.socketQueuedBytes,
        onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)? = nil
    ) {
        timeouts = ConnectionTimeouts(limits: limits, now: .now())
        self.wire = wire
        self.sent = sent
        self.queuedBytes = queuedBytes
        self.onExpiry = onExpiry
    }

    /// A socket channel's count of the bytes it has not yet written to its socket.
    public static func socketQueuedBytes(_ channel: any Channel) -> Int {
        (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The loop's clock, not the wall clock: tests drive an embedded loop's time by hand.
        timeouts = ConnectionTimeouts(limits: timeouts.limits, now: context.eventLoop.now)
        rearm(context: context)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: timeouts.headReceived(now: context.eventLoop.now)
        case .body(let body): timeouts.bodyReceived(body.readableBytes, now: context.eventLoop.now)
        case .end: timeouts.requestEnded()
        }
        rearm(context: context)
        context.fireChannelRead(data)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is BytesArrived {
            bytesArrived(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Bytes arrived from the client: what `BytesArrived` says, told directly by a wire handler
    /// this guard is linked to (`ConnectionWireHandler.arrivals`).
    func bytesArrived() {
        guard let context else { return }
        bytesArrived(context: context)
    }

    private func bytesArrived(context: ChannelHandlerContext) {
        timeouts.bytesArrived(now: context.eventLoop.now)
        rearm(context: context)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        outputChanged(context: context)
        context.fireChannelWritabilityChanged()
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let written = event as? ResponseWritten {
            timeouts.responseEnded(now: context.eventLoop.now)
            let flushesBefore = flushes
            takingResponse = true
            written.flushed.assumeIsolated().whenComplete { [self] _ in
                flushes &+= 1
                timeouts.responseFlushed(now: context.eventLoop.now)
                outputChanged(context: context, queueEmpty: takingResponse)
            }
            takingResponse = false
            // Usually the socket took the whole response at once and the callback above has
            // run already; only a response still queued needs watching now.
            if flushes == flushesBefore { outputChanged(context: context) }
        }
        context.triggerUserOutboundEvent(event, promise: promise)
    }

    /// Bytes queued in the channel for the socket.
    private func waitingBytes(_ context: ChannelHandlerContext) -> Int {
        queuedBytes(context.channel)
    }

    /// Bytes the client has taken in all: written to the channel, less what still waits there.
    private func drainedBytes(_ context: ChannelHandlerContext) -> Int {
        if let sent { return sent.count }
        return (wire?.bytesWritten ?? 0) - waitingBytes(context)
    }

    /// Whether bytes wait for the client: a response not yet all in the socket, or anything
    /// queued (an SSE response between events included).
    /// - Parameter queueEmpty: the caller knows nothing waits in the channel's queue, which is
    ///   then not asked (an option lookup, once per response otherwise).
    private func outputPending(_ context: ChannelHandlerContext, queueEmpty: Bool = false) -> Bool {
        timeouts.hasResponsesInFlight || !context.channel.isWritable || (!queueEmpty && waitingBytes(context) > 0)
    }

    private func outputChanged(context: ChannelHandlerContext, queueEmpty: Bool = false) {
        // A closing channel fails its queued writes, and their callbacks land here: its queue
        // is being emptied and must not be asked about.
        guard !closing, context.channel.isActive else { return }
        let pending = outputPending(context, queueEmpty: queueEmpty)
        // The count of bytes taken is read only when a watch starts: asking the channel costs an
        // option lookup, and this runs twice per response.
        let drained = pending && !timeouts.isWatchingSend ? drainedBytes(context) : 0
        timeouts.outputChanged(pending: pending, drained: drained, now: context.eventLoop.now)
        rearm(context: context)
    }

    /// Keeps one timer, no later than the machine's next deadline. A timer set for earlier is
    /// left alone (when it fires, the machine is asked again and the timer set anew): most
    /// events move the deadline later or clear it, and re-scheduling on each of them would cost
    /// every request a few timer-heap operations for nothing.
    private func rearm(context: ChannelHandlerContext) {
        guard !closing, let deadline = timeouts.nextDeadline else { return }
        if timer != nil, let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            fire(context: context)
        }
    }

    private func fire(context: ChannelHandlerContext) {
        guard !closing else { return }
        timeouts.outputChanged(pending: outputPending(context), drained: drainedBytes(context), now: context.eventLoop.now)
        let expiry = timeouts.expired(now: context.eventLoop.now, drained: drainedBytes(context))
        if let expiry { onExpiry?(expiry) }
        switch expiry {
        case nil:
            rearm(context: context)
        case .idle?, .sendStalled?:
            closing = true
            context.close(promise: nil)
        case .requestTimeout?:
            closing = true
            // Behind bytes the client is not reading, a 408 would never arrive, and waiting for
            // it to be written would keep the connection (and those bytes) forever.
            guard !outputPending(context) else {
                context.close(promise: nil)
                return
            }
            // Written below the HTTP layers (see `ConnectionWireHandler`): NIO's pipelining
            // handler does not expect an answer to a request whose head or body is unfinished.
            // The close follows the write; a client that does not take even those few bytes is
            // closed a second later regardless.
            context.triggerUserOutboundEvent(ConnectionWireHandler.AnswerTimeoutAndClose(), promise: nil)
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
                context.close(promise: nil)
            }
        }
    }
}

/// The guard's hands on the wire, in front of the HTTP decoder and encoder: tells
/// `ConnectionGuardHandler` when bytes arrive, before the decoder has made a request of them
/// (the header timeout runs from a request's first byte, not from its decoded head), counts the
/// bytes written (what a client has read is measured from it), and writes the guard's 408 as
/// raw bytes before closing.
public final class ConnectionWireHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// Sent outbound by the guard: answer 408 Request Timeout and close.
    public struct AnswerTimeoutAndClose: Sendable {}

    private static let requestTimeout = ByteBuffer(
        string: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n")

    /// Bytes written towards the socket since the connection opened.
    public private(set) var bytesWritten = 0

    public init() {}

    /// The connection's guard, told directly when bytes arrive (set by the bootstrap): a call
    /// where the `BytesArrived` event would travel through the decoder and the pipelining handler
    /// on every read. Unset, the event is sent.
    public var arrivals: ConnectionGuardHandler?

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let arrivals {
            arrivals.bytesArrived()
        } else {
            context.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        }
        context.fireChannelRead(data)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        arrivals = nil  // the guard holds this handler: no cycle outlives the pipeline
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        bytesWritten &+= unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is AnswerTimeoutAndClose else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(Self.requestTimeout))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        promise?.succeed()
    }
}
