import NIOCore

/// Where an SSE session writes: the connection handler. Confined to the connection's event loop.
///
/// Back-pressure is one figure, the backlog: bytes handed to the channel that the client's
/// socket has not taken yet. A session that produces at its own pace (the origin reading its
/// store) waits for `SSESession.drained` before producing more; one fed by a shared source it
/// cannot pause (the edge's fan-out) ends the response when the backlog grows past its bound.
public protocol SSEOutput: AnyObject {
    /// Writes and flushes `events`; returns the backlog afterwards, these bytes included if the
    /// socket did not take them at once.
    func send(_ events: ByteBuffer) -> Int
    /// The backlog now.
    var backlog: Int { get }
    /// Ends the response and closes the connection: SSE connections are not reused, so readers
    /// reconnect to whichever node is in front and caches can collapse them again (§10.2).
    func finish()
}

/// One SSE response in progress, driven by the connection handler on its event loop.
public protocol SSESession: AnyObject {
    /// Starts writing into `output`, after the response head has been written.
    func start(_ output: any SSEOutput)
    /// A backlog reported by `SSEOutput.send` has been taken by the socket.
    func drained()
    /// Ends the response now (server shutdown).
    func stop()
    /// The client went away: release everything without writing.
    func cancel()
}
