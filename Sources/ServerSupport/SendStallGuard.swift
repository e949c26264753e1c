import NIOCore

/// Closes an HTTP/2 connection whose client has stopped taking its bytes.
///
/// Each stream has its own `ConnectionGuardHandler`, but a stream only sees bytes leave it for
/// the connection: a client that grants large flow-control windows and then stops reading the
/// whole connection leaves those bytes queued in the socket channel, under no stream's watch.
/// This handler sits first in the connection's pipeline (under TLS, so it counts the bytes the
/// socket is given) and applies `SendStallWatch` to the socket's queue.
public final class SendStallGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    private var watch: SendStallWatch
    private var written = 0
    private var timer: Scheduled<Void>?
    private var closing = false
    private let queuedBytes: (any Channel) -> Int
    private let onStall: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - queuedBytes: bytes waiting in the channel for its socket (tests pass their own).
    ///   - onStall: told when the guard closes the connection (for metrics).
    public init(
        limits: ConnectionLimits, queuedBytes: @escaping (any Channel) -> Int = ConnectionGuardHandler.socketQueuedBytes,
        onStall: (@Sendable () -> Void)? = nil
    ) {
        watch = SendStallWatch(sendTimeout: limits.sendTimeout, minSendBytesPerSecond: limits.minSendBytesPerSecond)
        self.queuedBytes = queuedBytes
        self.onStall = onStall
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

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        written &+= unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    public func flush(context: ChannelHandlerContext) {
        context.flush()
        // After the flush the socket has taken what it could; what is left waits for the client.
        check(context)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        check(context)
        context.fireChannelWritabilityChanged()
    }

    private func check(_ context: ChannelHandlerContext) {
        guard !closing, context.channel.isActive else { return }
        let queued = queuedBytes(context.channel)
        let pending = queued > 0 || !context.channel.isWritable
        watch.outputChanged(pending: pending, drained: written &- queued, now: context.eventLoop.now)
        arm(context)
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard let deadline = watch.deadline else {
            timer?.cancel()
            timer = nil
            return
        }
        guard timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            fire(context)
        }
    }

    private func fire(_ context: ChannelHandlerContext) {
        guard !closing, context.channel.isActive else { return }
        let queued = queuedBytes(context.channel)
        watch.outputChanged(pending: queued > 0 || !context.channel.isWritable, drained: written &- queued, now: context.eventLoop.now)
        if watch.isStalled(now: context.eventLoop.now, drained: written &- queued) {
            closing = true
            onStall?()
            context.close(promise: nil)
            return
        }
        arm(context)
    }
}
