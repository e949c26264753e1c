import NIOCore
import NIOTLS

/// Closes a connection whose TLS handshake has not completed within `timeout`, then steps
/// aside once it has. Until ALPN has chosen HTTP/1.1 or HTTP/2 no request handler (and no
/// `ConnectionGuardHandler`) exists, so without it a client that opens a connection and sends
/// nothing, or half a ClientHello, would hold a connection slot forever.
public final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Passed on first: the ALPN handler behind waits for this very event.
        context.fireUserInboundEventTriggered(event)
        if case TLSUserEvent.handshakeCompleted = event {
            timer?.cancel()
            timer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
