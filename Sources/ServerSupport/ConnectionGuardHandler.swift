import NIOCore
import NIOHTTP1

/// Carries out `ConnectionTimeouts` on one connection: keeps one timer at the next deadline,
/// answers 408 to a request that arrives too slowly, closes connections that idle too long or
/// whose client stopped reading, and closes the connection after a malformed request (NIO's
/// protocol error handler writes the 400 and leaves the closing to the pipeline).
///
/// It sits after the pipelining handler, so it sees requests one at a time as the server handles
/// them, and the response parts on their way out. Raw bytes arriving before a request's head is
/// decoded are reported to it by `ConnectionWireHandler`, placed in front of the decoder.
public final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    /// Sent inbound by `ConnectionWireHandler` when bytes arrive from the client.
    public struct BytesArrived: Sendable {
        public init() {}
    }

    private var timeouts: ConnectionTimeouts
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var closing = false

    private let onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)?

    /// - Parameter onExpiry: told each time the guard closes a connection (for metrics).
    public init(limits: ConnectionLimits, onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)? = nil) {
        timeouts = ConnectionTimeouts(limits: limits, now: .now())
        self.onExpiry = onExpiry
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        // The loop's clock, not the wall clock: tests drive an embedded loop's time by hand.
        timeouts = ConnectionTimeouts(limits: timeouts.limits, now: context.eventLoop.now)
        rearm(context: context)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
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
            timeouts.bytesArrived(now: context.eventLoop.now)
            rearm(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The error handler in front has answered 400 with `Connection: close`; the parser
        // cannot continue after an error, so the connection ends here, once that answer is out.
        if error is HTTPParserError, !closing {
            closing = true
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        timeouts.writabilityChanged(writable: context.channel.isWritable, waiting: waitingBytes(context), now: context.eventLoop.now)
        rearm(context: context)
        context.fireChannelWritabilityChanged()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        timeouts.responseEnded(now: context.eventLoop.now)
        rearm(context: context)
        let flushed = promise ?? context.eventLoop.makePromise()
        flushed.futureResult.assumeIsolated().whenComplete { [self] _ in
            timeouts.responseFlushed(now: context.eventLoop.now)
            rearm(context: context)
        }
        context.write(data, promise: flushed)
    }

    private func waitingBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
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
        let expiry = timeouts.expired(now: context.eventLoop.now, waiting: waitingBytes(context))
        if let expiry { onExpiry?(expiry) }
        switch expiry {
        case nil:
            rearm(context: context)
        case .idle?, .sendStalled?:
            closing = true
            context.close(promise: nil)
        case .requestTimeout?:
            // Written below the HTTP layers (see `ConnectionWireHandler`): NIO's pipelining
            // handler does not expect an answer to a request whose head or body is unfinished.
            closing = true
            context.triggerUserOutboundEvent(ConnectionWireHandler.AnswerTimeoutAndClose(), promise: nil)
        }
    }
}

/// The guard's hands on the wire, in front of the HTTP decoder and encoder: tells
/// `ConnectionGuardHandler` when bytes arrive, before the decoder has made a request of them
/// (the header timeout runs from a request's first byte, not from its decoded head), and writes
/// the guard's 408 as raw bytes before closing.
public final class ConnectionWireHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// Sent outbound by the guard: answer 408 Request Timeout and close.
    public struct AnswerTimeoutAndClose: Sendable {}

    private static let requestTimeout = ByteBuffer(
        string: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n")

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(ConnectionGuardHandler.BytesArrived())
        context.fireChannelRead(data)
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
