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

/// Cancellation for one in-flight request: the connection handler cancels it when the client
/// goes away or the server shuts down, and long-polls register what to undo. Confined to the
/// connection's event loop.
final class LiveRequest {
    private var handlers: [() -> Void] = []
    private(set) var isCancelled = false

    /// Runs `handler` on cancellation (at once if already cancelled).
    func onCancel(_ handler: @escaping () -> Void) {
        if isCancelled { handler() } else { handlers.append(handler) }
    }

    func cancel() {
        guard !isCancelled else { return }
        isCancelled = true
        let pending = handlers
        handlers = []
        pending.forEach { $0() }
    }
}
