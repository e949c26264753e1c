import DurableStreams
import NIOCore
import NIOHTTP1

/// The request side of one server connection, shared by the origin's and the edge's handlers:
/// the request state machine, plus what the response must know about its request (keep-alive,
/// HEAD) and about the server (shutting down).
public struct HTTPConnection: Sendable {
    private var machine: RequestStateMachine
    private var keepAlive = true
    /// A HEAD response carries headers only.
    public private(set) var isHeadRequest = false
    /// The server is shutting down: every response closes its connection.
    public var quiescing = false

    /// The server-wide budget request bodies are counted against while they arrive.
    private let bodyBudget: RequestBodyBudget?
    /// What this connection's current request body holds of `bodyBudget`.
    private var reservedBodyBytes = 0

    public init(maxBodyBytes: Int, bodyBudget: RequestBodyBudget? = nil) {
        machine = RequestStateMachine(maxBodyBytes: maxBodyBytes)
        self.bodyBudget = bodyBudget
    }

    /// No request is in progress.
    public var isIdle: Bool {
        if case .idle = machine.state { return true }
        return false
    }

    /// Whether the connection closes once the current response is written.
    public var closesAfterResponse: Bool { !keepAlive || quiescing }

    /// Feeds one request part; a refused request also closes the connection.
    public mutating func read(_ part: HTTPServerRequestPart) -> RequestStateMachine.Action {
        let action: RequestStateMachine.Action
        switch part {
        case .head(let head):
            keepAlive = head.isKeepAlive
            isHeadRequest = head.method == .HEAD
            action = machine.receivedHead(head)
        case .body(let body):
            if let bodyBudget, case .receiving = machine.state {
                guard bodyBudget.reserve(body.readableBytes) else {
                    releaseBody()
                    keepAlive = false
                    return refuseForBudget()
                }
                reservedBodyBytes += body.readableBytes
            }
            action = machine.receivedBody(body)
        case .end:
            action = machine.receivedEnd()
        }
        // A complete request keeps its share until the server takes it up (`releaseBody`): a
        // request held back behind answers the client is not reading still holds its body.
        if case .rejectAndClose = action {
            keepAlive = false
            releaseBody()
        }
        return action
    }

    /// Gives this connection's share of the body budget back: the request was taken up or
    /// refused, or the connection is going away.
    public mutating func releaseBody() {
        bodyBudget?.release(reservedBodyBytes)
        reservedBodyBytes = 0
    }

    private mutating func refuseForBudget() -> RequestStateMachine.Action {
        machine.discard()
        return .rejectAndClose(ProtocolError(.serviceUnavailable, "server busy: too many request bodies arriving at once; retry later"))
    }

    /// A response ready to be written, with what the request decided about it.
    public struct PreparedResponse: Sendable {
        public let head: HTTPResponseHead
        public let writesBody: Bool
        public let closes: Bool
    }

    /// Ends the current request's turn and decides how its response goes out: `Connection:
    /// close` when the connection ends, no body for HEAD, 204 or 304. The connection is ready
    /// for the next request from here on: the pipelining handler in front releases a pipelined
    /// request as soon as it sees the end of this response.
    ///
    /// Writing is a separate, non-mutating step (`write`) because writing the end can deliver that
    /// next request into the handler at once, which must then be free to update this state.
    public mutating func finishResponse(_ head: HTTPResponseHead) -> PreparedResponse {
        var head = head
        let closes = closesAfterResponse
        if closes { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        let writesBody = !isHeadRequest && head.status != .noContent && head.status != .notModified
        machine.responseCompleted()
        return PreparedResponse(head: head, writesBody: writesBody, closes: closes)
    }

    /// Writes a prepared response and closes the connection afterwards if it must. Parts may be
    /// file ranges; `written` runs once the response has left or failed (so files are closed
    /// only when nothing is being sent from them).
    @inlinable
    public static func write(
        _ response: PreparedResponse, parts: some Sequence<IOData>, context: ChannelHandlerContext,
        wrap: (HTTPServerResponsePart) -> NIOAny, written: (@Sendable () -> Void)? = nil
    ) {
        context.write(wrap(.head(response.head)), promise: nil)
        if response.writesBody {
            for part in parts where part.readableBytes > 0 {
                context.write(wrap(.body(part)), promise: nil)
            }
        }
        let closes = response.closes
        context.writeAndFlush(wrap(.end(nil))).assumeIsolated().whenComplete { _ in
            written?()
            if closes { context.close(promise: nil) }
        }
    }
}
