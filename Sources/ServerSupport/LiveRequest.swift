/// Cancellation for one in-flight request: the connection handler cancels it when the client
/// goes away or the server shuts down, and whatever waits on the client's behalf (a long-poll,
/// a collapsed upstream request) registers what to undo. Confined to the connection's event loop.
public final class LiveRequest {
    private var handlers: [() -> Void] = []
    public private(set) var isCancelled = false
    /// Who made the request, once authentication has said (an API key's name, a token's
    /// subject): carried back out to the access log, which sits in front of authentication.
    public var principal: String?

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
