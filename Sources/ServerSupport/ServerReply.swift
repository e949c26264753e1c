import NIOCore
import NIOHTTP1

/// What a responder answers a request with; the connection handler writes it.
public enum ServerReply: Sendable {
    /// A complete response; `body` is written in order without being joined.
    case response(HTTPResponseHead, body: [ByteBuffer])
    /// A complete response whose parts may be file ranges (`sendfile`); `written` runs once the
    /// response has left or failed, so the files are closed only when nothing is sent from them.
    case fileResponse(HTTPResponseHead, body: [IOData], written: @Sendable () -> Void)
    /// A response serialized ahead of time (shared bytes), plus this request's own header lines.
    case encoded(EncodedResponse, extra: ExtraHeaderLines)
    /// A streaming SSE response: the head goes out at once, then the session `start` makes on
    /// the connection's event loop writes events until it ends the response.
    case sse(HTTPResponseHead, start: @Sendable (any EventLoop) -> any SSESession)

    /// The head as the responder made it (an encoded reply's before framing).
    public var head: HTTPResponseHead {
        switch self {
        case .response(let head, _), .fileResponse(let head, _, _), .sse(let head, _): return head
        case .encoded(let response, _): return response.head
        }
    }

    public var status: HTTPResponseStatus { head.status }

    /// Body bytes a complete reply sends; 0 for SSE, whose sessions count their own.
    public var bodyBytes: Int {
        switch self {
        case .response(_, let body): return body.reduce(0) { $0 + $1.readableBytes }
        case .fileResponse(_, let body, _): return body.reduce(0) { $0 + $1.readableBytes }
        case .encoded(let response, _): return response.body.readableBytes
        case .sse: return 0
        }
    }
}
