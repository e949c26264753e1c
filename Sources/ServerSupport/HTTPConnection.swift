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

    public init(maxBodyBytes: Int) {
        machine = RequestStateMachine(maxBodyBytes: maxBodyBytes)
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
            action = machine.receivedBody(body)
        case .end:
            action = machine.receivedEnd()
        }
        if case .rejectAndClose = action { keepAlive = false }
        return action
    }

    /// Writes a complete response: the head (with `Connection: close` when the connection ends),
    /// the body unless the status or a HEAD request forbids one, and the end, then closes the
    /// connection if it must.
    public mutating func writeResponse(
        _ head: HTTPResponseHead, body: [ByteBuffer], context: ChannelHandlerContext,
        wrap: (HTTPServerResponsePart) -> NIOAny
    ) {
        var head = head
        let close = closesAfterResponse
        if close { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrap(.head(head)), promise: nil)
        if !isHeadRequest && head.status != .noContent && head.status != .notModified {
            for part in body where part.readableBytes > 0 {
                context.write(wrap(.body(.byteBuffer(part))), promise: nil)
            }
        }
        // Ready for the next request before `.end` goes out: the pipelining handler in front
        // releases a pipelined request as soon as it sees the end of this response.
        machine.responseCompleted()
        context.writeAndFlush(wrap(.end(nil))).assumeIsolated().whenComplete { _ in
            if close { context.close(promise: nil) }
        }
    }
}
