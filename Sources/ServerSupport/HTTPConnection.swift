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

    /// The current request is HTTP/1.0: keep-alive must be said (RFC 9112 §9.3) and chunked
    /// framing is not understood.
    public private(set) var isHTTP10 = false

    /// The `Connection` value a response says: `close` when the connection ends, `keep-alive`
    /// when an HTTP/1.0 client's connection stays open, otherwise none.
    public var connectionHeader: String? {
        closesAfterResponse ? "close" : isHTTP10 ? "keep-alive" : nil
    }

    /// Feeds one request part; a refused request also closes the connection.
    public mutating func read(_ part: HTTPServerRequestPart) -> RequestStateMachine.Action {
        let action: RequestStateMachine.Action
        switch part {
        case .head(let head):
            // NIO's decoder stops parsing after a request that asks to switch protocols (or to
            // tunnel), and would buffer whatever follows: such a connection ends with its answer.
            keepAlive = head.isKeepAlive && !Self.asksToLeaveHTTP(head)
            isHeadRequest = head.method == .HEAD
            isHTTP10 = head.version.major == 1 && head.version.minor == 0
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

    /// `CONNECT`, or an `Upgrade` the `Connection` header names.
    static func asksToLeaveHTTP(_ head: HTTPRequestHead) -> Bool {
        if head.method == .CONNECT { return true }
        guard head.headers.contains(name: "Upgrade") else { return false }
        return head.headers[canonicalForm: "Connection"].contains { HeaderName.equalIgnoringCase(String($0), "upgrade") }
    }

    /// Gives this connection's share of the body budget back: the request was taken up or
    /// refused, or the connection is going away.
    public mutating func releaseBody() {
        bodyBudget?.release(reservedBodyBytes)
        reservedBodyBytes = 0
    }

    /// The request cannot be read (the decoder failed): what is left of it is dropped, and the
    /// connection closes after the answer.
    public mutating func refuse() {
        keepAlive = false
        // The 400 answers no HEAD request, whatever the last one was: it carries its body.
        isHeadRequest = false
        machine.discard()
        releaseBody()
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
    /// close` when the connection ends, no body for HEAD, 204 or 304, and the framing
    /// (`Content-Length` from `bodyBytes` when the responder set none). The connection is ready
    /// for the next request from here on: the pipelining handler in front releases a pipelined
    /// request as soon as it hears this response was written (`ResponseWritten`).
    ///
    /// Writing is a separate, non-mutating step (`write`) because writing can deliver that next
    /// request into the handler at once, which must then be free to update this state.
    public mutating func finishResponse(_ head: HTTPResponseHead, bodyBytes: Int) -> PreparedResponse {
        var head = head
        let closes = closesAfterResponse
        if let connection = connectionHeader { head.headers.replaceOrAdd(name: "Connection", value: connection) }
        let writesBody = !isHeadRequest && head.status.mayHaveResponseBody
        if !head.status.mayHaveResponseBody {
            head.headers.remove(name: "Content-Length")
            head.headers.remove(name: "Transfer-Encoding")
        } else if head.headers.contains(name: "Content-Length") {
            head.headers.remove(name: "Transfer-Encoding")
        } else if !isHeadRequest {
            // The whole body is at hand: say its length rather than chunk it.
            head.headers.remove(name: "Transfer-Encoding")
            head.headers.add(name: "Content-Length", value: String(bodyBytes))
        }
        machine.responseCompleted()
        return PreparedResponse(head: head, writesBody: writesBody, closes: closes)
    }

    /// Ends the current request's turn for a response serialized ahead of time: whether its
    /// body goes out (not for HEAD, 204 or 304) and whether the connection closes after it.
    public mutating func finishResponse(_ response: EncodedResponse) -> (writesBody: Bool, closes: Bool, connection: String?) {
        let closes = closesAfterResponse
        let connection = connectionHeader
        let writesBody = !isHeadRequest && response.status.mayHaveResponseBody
        machine.responseCompleted()
        return (writesBody, closes, connection)
    }

    /// Writes a response serialized ahead of time: its shared head lines, this request's own
    /// lines (and `Connection: close` when the connection ends), the blank line, the shared body.
    @inlinable
    public static func write(
        _ response: EncodedResponse, extra: ExtraHeaderLines, writesBody: Bool, closes: Bool, connection: String?,
        context: ChannelHandlerContext
    ) {
        var tail = extra.bytes
        if let connection { ResponseHeadEncoder.writeHeader(name: "Connection", value: connection, into: &tail) }
        tail.writeStaticString("\r\n")
        context.write(NIOAny(IOData.byteBuffer(response.headLines)), promise: nil)
        if writesBody, response.body.readableBytes > 0 {
            context.write(NIOAny(IOData.byteBuffer(tail)), promise: nil)
            end(with: .byteBuffer(response.body), closes: closes, context: context)
        } else {
            end(with: .byteBuffer(tail), closes: closes, context: context)
        }
    }

    /// Frames the head of a streaming (SSE) response: chunked, since its length is unknown,
    /// except for an HTTP/1.0 client, which reads the body until the connection closes (as it
    /// does when the stream ends). The request's turn lasts until the stream ends.
    public func streamingHead(_ head: HTTPResponseHead) -> (head: HTTPResponseHead, chunked: Bool) {
        var head = head
        head.headers.remove(name: "Content-Length")
        guard !isHTTP10 else {
            head.headers.remove(name: "Transfer-Encoding")
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            return (head, false)
        }
        head.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
        return (head, true)
    }

    /// Writes a prepared response and closes the connection afterwards if it must. Parts may be
    /// file ranges; `written` runs once the response has left or failed (so files are closed
    /// only when nothing is being sent from them).
    @inlinable
    public static func write(
        _ response: PreparedResponse, parts: some Sequence<IOData>, context: ChannelHandlerContext,
        written: (@Sendable () -> Void)? = nil
    ) {
        var head = context.channel.allocator.buffer(capacity: 512)
        ResponseHeadEncoder.writeLines(response.head, into: &head)
        head.writeStaticString("\r\n")
        var last = IOData.byteBuffer(head)
        if response.writesBody {
            for part in parts where part.readableBytes > 0 {
                context.write(NIOAny(last), promise: nil)
                last = part
            }
        }
        end(with: last, closes: response.closes, written: written, context: context)
    }

    /// Writes a response's last part and flushes, tells the handlers in front the response is
    /// written (`ResponseWritten`), and once it has left runs `written` and closes if it must.
    @inlinable
    static func end(
        with last: IOData, closes: Bool, written: (@Sendable () -> Void)? = nil, context: ChannelHandlerContext
    ) {
        let flushed = context.writeAndFlush(NIOAny(last))
        context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
        guard closes || written != nil else { return }
        flushed.assumeIsolated().whenComplete { _ in
            written?()
            if closes { context.close(promise: nil) }
        }
    }
}
