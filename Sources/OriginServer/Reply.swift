import NIOCore
import NIOHTTP1
import StreamStore

/// What the service answers a request with.
enum Reply: Sendable {
    /// A complete response; `body` is written in order without being joined.
    case response(HTTPResponseHead, body: [ByteBuffer])
    /// A complete response with parts sent from files (`sendfile`); `files` are closed once the
    /// response has been written or has failed.
    case fileResponse(HTTPResponseHead, body: [IOData], files: ReadFiles)
    /// A streaming SSE response: the head goes out at once, then a session made from the plan
    /// writes events.
    case sse(HTTPResponseHead, SSEPlan)

    /// Body bytes the reply sends.
    var bodyBytes: Int {
        switch self {
        case .response(_, let body): return body.reduce(0) { $0 + $1.readableBytes }
        case .fileResponse(_, let body, _): return body.reduce(0) { $0 + $1.readableBytes }
        case .sse: return 0
        }
    }

    var status: HTTPResponseStatus {
        switch self {
        case .response(let head, _), .fileResponse(let head, _, _), .sse(let head, _): return head.status
        }
    }
}

