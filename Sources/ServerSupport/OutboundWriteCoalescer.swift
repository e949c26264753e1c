import NIOCore

/// Joins the small writes made between two flushes into one buffer before TLS sees them.
///
/// NIO's TLS handler encrypts each write as a record of its own, and a response is written in
/// parts (a cache hit: shared head lines, the request's own lines, the body): three records,
/// three AEAD operations and 3 × 29 bytes of framing for a 1 KiB answer. Copying a few small
/// buffers into one costs less than that. Writes larger than `limit`, or that would take the
/// joined buffer past it, are passed on as they are (after what was joined before them, so the
/// order is kept): large bodies are not copied.
public final class OutboundWriteCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// The most bytes joined into one write.
    public let limit: Int
    private var pending: ByteBuffer?
    private var pendingCount = 0
    private var promises: [EventLoopPromise<Void>] = []

    public init(limit: Int = 16 * 1024) {
        self.limit = limit
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let buffer) = unwrapOutboundIn(data), buffer.readableBytes <= limit else {
            writePending(context: context)
            context.write(data, promise: promise)
            return
        }
        if let joined = pending, joined.readableBytes + buffer.readableBytes > limit {
            writePending(context: context)
        }
        if pending == nil {
            // The first part is kept as it is: a lone write is passed on without a copy.
            pending = buffer
        } else {
            if pendingCount == 1 {
                // The second part: from here on the parts are copied into a buffer of our own.
                var joined = context.channel.allocator.buffer(capacity: limit)
                joined.writeImmutableBuffer(pending!)
                pending = joined
            }
            pending!.writeImmutableBuffer(buffer)
        }
        pendingCount += 1
        if let promise { promises.append(promise) }
    }

    public func flush(context: ChannelHandlerContext) {
        writePending(context: context)
        context.flush()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What was written before the close goes first, as it would have without this handler.
        writePending(context: context)
        context.close(mode: mode, promise: promise)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        writePending(context: context)
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let joined = pending else { return }
        let waiting = promises
        pending = nil
        pendingCount = 0
        promises = []
        switch waiting.count {
        case 0:
            context.write(wrapOutboundOut(.byteBuffer(joined)), promise: nil)
        case 1:
            context.write(wrapOutboundOut(.byteBuffer(joined)), promise: waiting[0])
        default:
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.write(wrapOutboundOut(.byteBuffer(joined)), promise: promise)
            promise.futureResult.whenComplete { result in
                for waiter in waiting { waiter.completeWith(result) }
            }
        }
    }
}
