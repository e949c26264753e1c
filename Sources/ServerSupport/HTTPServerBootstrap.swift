import NIOCore
import NIOHTTP1
import NIOPosix

/// The listening side both servers share: socket options, the connection cap, and each
/// connection's pipeline up to the server's own handler:
///
/// `ConnectionWireHandler` → NIO's HTTP/1.1 request decoder → `HTTPPipeliningHandler` →
/// `ConnectionGuardHandler` → what `addHandlers` adds (the server's `HTTPServerHandler`, which
/// frames its responses as bytes: see `ResponseHeadEncoder`).
public enum HTTPServerBootstrap {
    /// - Parameters:
    ///   - cap: connections beyond its limit are closed as soon as they are accepted.
    ///   - onRefused: told when a connection is closed on arrival (for metrics).
    ///   - onExpiry: told when a connection is closed for taking too long (for metrics).
    ///   - addHandlers: adds the server's handlers at the end of an admitted connection's pipeline.
    public static func make(
        group: any EventLoopGroup, backlog: Int32, limits: ConnectionLimits, cap: ConnectionCap,
        onRefused: (@Sendable () -> Void)? = nil, onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)? = nil,
        addHandlers: @escaping @Sendable (any Channel, ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: backlog)
            // Accept up to 64 connections per wake-up of the listening socket, not NIO's default 4:
            // on a loop busy with thousands of live readers, a handful per loop turn let new
            // connections wait seconds for their first answer (measured with the load tester).
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                // Refused before anything is built for it: a connection beyond the cap costs an
                // accept and a close. (A failed initializer makes NIO close the channel.)
                guard cap.admit() else {
                    onRefused?()
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                channel.closeFuture.whenComplete { _ in cap.release() }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let wire = ConnectionWireHandler()
                    try sync.addHandler(wire)
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(HTTPPipeliningHandler())
                    try sync.addHandler(ConnectionGuardHandler(limits: limits, wire: wire, onExpiry: onExpiry))
                    try addHandlers(channel, sync)
                }
            }
    }

    /// Why an accepted connection was closed at once.
    public struct ConnectionRefused: Error, CustomStringConvertible {
        public var description: String { "connection limit reached" }
    }
}
