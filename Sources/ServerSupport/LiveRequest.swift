/// Cancellation for one in-flight request: the connection handler cancels it when the client
/// goes away or the server shuts down, and whatever waits on the client's behalf (a long-poll,
/// a collapsed upstream request) registers what to undo. Confined to the connection's event loop.
public final class LiveRequest {
    private var handlers: [() -> Void] = []
    public private(set) var isCancelled = false

    public init() {}

    /// Runs `handler` on cancellation (at once if already cancelled).
    public func onCancel(_ handler: @escaping () -> Void) {
        if isCancelled { handler() } else { handlers.append(handler) }
    }

    public func cancel() {
        guard !isCancelled else { return }
        isCancelled = true
        let pending = handlers
        handlers = []
        pending.forEach { $0() }
    }
}
