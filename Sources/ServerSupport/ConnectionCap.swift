import NIOConcurrencyHelpers

/// The client connections a server holds, against a maximum: a connection beyond it is closed
/// as soon as it is accepted, before any handler or buffer is made for it. Shared by every
/// event loop of one server.
public final class ConnectionCap: Sendable {
    public let limit: Int
    private let state = NIOLockedValueBox((open: 0, refused: 0))

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Counts a new connection in, or refuses it when `limit` are open.
    public func admit() -> Bool {
        state.withLockedValue { state in
            guard state.open < limit else {
                state.refused += 1
                return false
            }
            state.open += 1
            return true
        }
    }

    /// An admitted connection closed.
    public func release() {
        state.withLockedValue { $0.open = max(0, $0.open - 1) }
    }

    /// Connections open now.
    public var open: Int { state.withLockedValue { $0.open } }

    /// Connections refused since the server started.
    public var refused: Int { state.withLockedValue { $0.refused } }
}
