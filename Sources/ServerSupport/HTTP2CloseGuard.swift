import NIOCore
import NIOHTTP2

/// Makes sure an HTTP/2 connection the server has decided to close does close.
///
/// NIO's `NIOHTTP2ServerConnectionManagementHandler` winds a connection down (idle timeout,
/// shutdown) in two steps: GOAWAY and a PING, then, once the client has answered the PING, a
/// second GOAWAY and the close (its grace timer only starts then). Two things can leave it
/// waiting forever:
///
/// - NIO's HTTP/2 handler treats a connection whose GOAWAY left it without streams as closed
///   (`fullyQuiesced`): a SETTINGS ACK (or any frame but PING) that the client had sent before
///   it saw the GOAWAY is a connection error there. The handler answers GOAWAY(PROTOCOL_ERROR)
///   and reports the error, but leaves the closing to the pipeline, and the PING answer never
///   reaches the manager. (A client slower than the idle timeout to acknowledge the server's
///   SETTINGS got exactly this: its idle connection stayed open for good.)
/// - A client that never answers the PING.
///
/// This handler sits between NIO's HTTP/2 handler and the manager, so it sees the frames the
/// manager writes and the errors the HTTP/2 handler reports. It closes the connection at once on
/// `IOOnClosedConnection` (NIO has concluded the connection is over: no stream is open), and
/// closes it `bound` after the first GOAWAY if it is still open then.
public final class HTTP2CloseGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTP2Frame
    public typealias InboundOut = HTTP2Frame
    public typealias OutboundIn = HTTP2Frame
    public typealias OutboundOut = HTTP2Frame

    private let bound: TimeAmount
    private let onForcedClose: (@Sendable () -> Void)?
    private var timer: Scheduled<Void>?
    private var closing = false

    /// - Parameters:
    ///   - bound: how long a connection may take to close after the server's first GOAWAY.
    ///   - onForcedClose: told when this handler closes the connection (for metrics, tests).
    public init(bound: TimeAmount, onForcedClose: (@Sendable () -> Void)? = nil) {
        self.bound = bound
        self.onForcedClose = onForcedClose
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
        if timer == nil, !closing, case .goAway = unwrapOutboundIn(data).payload {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: bound) { [self] in
                timer = nil
                forceClose(context)
            }
        }
        context.write(data, promise: promise)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
        if error is NIOHTTP2Errors.IOOnClosedConnection {
            forceClose(context)
        }
    }

    private func forceClose(_ context: ChannelHandlerContext) {
        guard !closing, context.channel.isActive else { return }
        closing = true
        timer?.cancel()
        timer = nil
        onForcedClose?()
        context.close(promise: nil)
    }
}
