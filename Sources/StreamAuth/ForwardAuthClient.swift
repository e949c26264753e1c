import NIOCore
import NIOHTTP1
import NIOPosix

/// Asks the forward-auth endpoint one question: a `GET` on a connection of its own (NIO's HTTP/1.1
/// client pipeline), closed as soon as the answer's head arrives. Its body is never read, so
/// nothing the endpoint sends can grow without bound here (NIO's decoder bounds the head).
///
/// A connection per check, not a pool: decisions are cached (`forward_auth_cache`), so checks
/// are rare next to requests, and a fresh connection never meets one the endpoint half-closed.
/// It runs on the event loop of the request being checked, and blocks nothing: names are
/// resolved off the loop by NIO.
public struct ForwardAuthClient: Sendable {
    public let endpoint: ForwardAuthEndpoint
    /// Bound on the whole check: connecting, sending, and the answer's head arriving.
    public let timeout: TimeAmount

    public init(endpoint: ForwardAuthEndpoint, timeout: TimeAmount) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    /// The head of the endpoint's answer.
    public struct Answer: Sendable {
        public var status: HTTPResponseStatus
        public var headers: HTTPHeaders
    }

    /// Why there is no answer, phrased for the client that gets the 503.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unreachable
        case timedOut
        case closedWithoutAnswer

        public var description: String {
            switch self {
            case .unreachable: return "authorization service is unreachable"
            case .timedOut: return "authorization service did not answer in time"
            case .closedWithoutAnswer: return "authorization service closed the connection without answering"
            }
        }
    }

    /// Sends `GET <target>` with `headers` (plus `Host` and `Connection: close`). Fails with a
    /// `Failure` when no answer's head arrives within `timeout`.
    public func ask(_ headers: [(String, String)], on loop: any EventLoop) -> EventLoopFuture<Answer> {
        var requestHeaders = HTTPHeaders(headers)
        requestHeaders.replaceOrAdd(name: "Host", value: endpoint.hostHeader)
        requestHeaders.replaceOrAdd(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.target, headers: requestHeaders)
        let promise = loop.makePromise(of: Answer.self)
        // Whichever comes first settles the promise; a promise completed twice keeps the first.
        let deadline = loop.scheduleTask(in: timeout) { promise.fail(Failure.timedOut) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        // Only a loop that can open sockets (NIOPosix's) will do; the server's always is.
        guard let bootstrap = ClientBootstrap(validatingGroup: loop) else {
            promise.fail(Failure.unreachable)
            return promise.futureResult
        }
        bootstrap
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AnswerHandler(request: head, promise: promise))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Answered, timed out or failed: the connection has done its work.
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure:
                    promise.fail(Failure.unreachable)
                }
            }
        return promise.futureResult
    }

    /// Sends the request once connected and takes the answer's head.
    private final class AnswerHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        private let request: HTTPRequestHead
        private let promise: EventLoopPromise<Answer>

        init(request: HTTPRequestHead, promise: EventLoopPromise<Answer>) {
            self.request = request
            self.promise = promise
        }

        func channelActive(context: ChannelHandlerContext) {
            context.write(wrapOutboundOut(.head(request)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // Only the head decides; body parts are dropped until the connection closes.
            guard case .head(let head) = unwrapInboundIn(data), head.status.code >= 200 else { return }
            promise.succeed(Answer(status: head.status, headers: head.headers))
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure.closedWithoutAnswer)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A malformed answer, a reset: no decision.
            promise.fail(Failure.closedWithoutAnswer)
            context.close(promise: nil)
        }
    }
}
