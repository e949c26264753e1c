/// The life of one upstream SSE stream (`UpstreamStreamCore`) as a plain value: connecting,
/// streaming on its dedicated connection, cancelled (its end is on the way), ended. Head and body
/// are delivered only before the end; the end is delivered exactly once, with the cancellation's
/// error if the stream was cancelled first, whatever the connection then reports.
///
/// No I/O and no locks: `cancel` comes from any thread (the consumer, the pool's shutdown) and
/// the connection is attached on its own loop, so `UpstreamStreamCore` keeps this under its lock
/// and closes the connection or calls back outside it. Generic over the connection so that tests
/// need no channel.
struct UpstreamStreamStateMachine<Connection> {
    enum Phase {
        case connecting
        case streaming(Connection)
        /// Cancelled with this error: the connection, if there was one, is being closed and
        /// the end is delivered next.
        case cancelled(UpstreamError)
        case ended
    }

    private(set) var phase = Phase.connecting

    /// Head and body may still be delivered.
    var isStreaming: Bool {
        switch phase {
        case .connecting, .streaming: true
        case .cancelled, .ended: false
        }
    }

    /// The connection is up. False if the stream was cancelled or ended meanwhile: the caller
    /// closes the connection.
    mutating func attach(_ connection: Connection) -> Bool {
        guard case .connecting = phase else { return false }
        phase = .streaming(connection)
        return true
    }

    /// Returns the connection to close, if the stream has one and was neither cancelled nor
    /// ended before. The caller then delivers the end (`end` decides whether there is one left).
    mutating func cancel(_ error: UpstreamError) -> Connection? {
        switch phase {
        case .connecting:
            phase = .cancelled(error)
            return nil
        case .streaming(let connection):
            phase = .cancelled(error)
            return connection
        case .cancelled, .ended:
            return nil
        }
    }

    enum EndAction {
        /// The end was already delivered.
        case none
        /// Deliver the end with this error (`nil`: the response ended normally).
        case deliver((any Error)?)
    }

    /// The response ended (`nil`), the connection failed, or a cancellation's end came round.
    mutating func end(_ error: (any Error)?) -> EndAction {
        switch phase {
        case .ended:
            return .none
        case .cancelled(let cancellation):
            phase = .ended
            return .deliver(cancellation)
        case .connecting, .streaming:
            phase = .ended
            return .deliver(error)
        }
    }
}

extension UpstreamStreamStateMachine: Sendable where Connection: Sendable {}
extension UpstreamStreamStateMachine.Phase: Sendable where Connection: Sendable {}
