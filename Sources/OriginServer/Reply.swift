import NIOCore
import NIOHTTP1

/// What the service answers a request with.
enum Reply: Sendable {
    /// A complete response; `body` is written in order without being joined.
    case response(HTTPResponseHead, body: [ByteBuffer])
    /// A streaming SSE response: the head goes out at once, then a session made from the plan
    /// writes events.
    case sse(HTTPResponseHead, SSEPlan)

    var status: HTTPResponseStatus {
        switch self {
        case .response(let head, _), .sse(let head, _): return head.status
        }
    }
}

