import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// The listening side both servers share: socket options, the connection cap, TLS and HTTP/2
/// when configured, and each connection's pipeline up to the server's `HTTPServerHandler`.
///
/// HTTP/1.1 (plain, or over TLS when ALPN does not choose `h2`):
/// [`NIOSSLServerHandler`] → `ConnectionWireHandler` → NIO's HTTP/1.1 request decoder →
/// `HTTPPipeliningHandler` → `ConnectionGuardHandler` → [`OutboundWriteCoalescer`] →
/// `HTTPServerHandler` (which frames its responses as bytes: see `ResponseHeadEncoder`). With TLS
/// the coalescer sits right under the server's handler, so a response's parts travel the pipeline
/// as one write.
///
/// HTTP/2 (over TLS, chosen by ALPN): `SendStallGuard` → `NIOSSLServerHandler` → `OutboundWriteCoalescer` → NIO's `NIOHTTP2Handler` →
/// `HTTP2CloseGuard` (a connection being closed does close) → `NIOHTTP2ServerConnectionManagementHandler`
/// (closes idle connections, winds down with GOAWAY); each stream: NIO's HTTP/2-to-HTTP/1 codec → `ConnectionGuardHandler` →
/// `HTTPServerHandler` writing typed parts.
public enum HTTPServerBootstrap {
    /// Streams one HTTP/2 connection may have open at once: a browser page's SSE readers share
    /// one connection, so this is how many it may hold (HTTP/1.1 allows six per host).
    public static let maxConcurrentStreams = 256

    /// - Parameters:
    ///   - cap: connections beyond its limit are closed as soon as they are accepted.
    ///   - tls: when set, every connection starts with a TLS handshake, and ALPN may choose HTTP/2.
    ///   - registry: where each connection is tracked, so that shutdown can wind it down.
    ///   - onRefused: told when a connection is closed on arrival (for metrics).
    ///   - onExpiry: told when a connection is closed for taking too long (for metrics).
    ///   - makeHandler: the server's handler for one HTTP/1.1 connection or one HTTP/2 stream.
    public static func make(
        group: any EventLoopGroup, backlog: Int32, limits: ConnectionLimits, cap: ConnectionCap,
        tls: ServerTLS? = nil, registry: ConnectionRegistry,
        onRefused: (@Sendable () -> Void)? = nil, onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)? = nil,
        makeHandler: @escaping @Sendable (HTTPServerHandler.Framing) -> HTTPServerHandler
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
                let http1: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try addHTTP1(
                            channel.pipeline.syncOperations, limits: limits, coalesce: tls != nil, onExpiry: onExpiry, makeHandler: makeHandler)
                        registry.track(channel, handler)
                    }
                }
                guard let tls else { return http1(channel) }
                do {
                    try channel.pipeline.syncOperations.addHandler(tls.makeHandler())
                    // The handshake (ALPN included) gets the time a request head gets.
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(timeout: limits.headerTimeout))
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                guard tls.offersHTTP2 else { return http1(channel) }
                return channel.configureHTTP2SecureUpgrade(
                    h2ChannelConfigurator: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let quiescer = HTTP2ConnectionQuiescer(channel: channel)
                            try addHTTP2(channel, limits: limits, quiescer: quiescer, onExpiry: onExpiry, makeHandler: makeHandler)
                            registry.track(channel, quiescer)
                        }
                    },
                    http1ChannelConfigurator: http1)
            }
    }

    /// - Parameter coalesce: join each flush's writes into one (`OutboundWriteCoalescer`): over
    ///   TLS, where each write would be a record of its own.
    private static func addHTTP1(
        _ sync: ChannelPipeline.SynchronousOperations, limits: ConnectionLimits, coalesce: Bool,
        onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)?,
        makeHandler: @Sendable (HTTPServerHandler.Framing) -> HTTPServerHandler
    ) throws -> HTTPServerHandler {
        let wire = ConnectionWireHandler()
        try sync.addHandler(wire)
        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try sync.addHandler(HTTPPipeliningHandler())
        let guardHandler = ConnectionGuardHandler(limits: limits, wire: wire, onExpiry: onExpiry)
        wire.arrivals = guardHandler
        try sync.addHandler(guardHandler)
        // One TLS record per flush, not one per response part; and above the guard, the
        // pipelining handler and the wire, so that they each see one write, not three.
        if coalesce { try sync.addHandler(OutboundWriteCoalescer()) }
        let handler = makeHandler(.http1)
        try sync.addHandler(handler)
        return handler
    }

    private static func addHTTP2(
        _ channel: any Channel, limits: ConnectionLimits, quiescer: HTTP2ConnectionQuiescer,
        onExpiry: (@Sendable (ConnectionTimeouts.Expiry) -> Void)?,
        makeHandler: @escaping @Sendable (HTTPServerHandler.Framing) -> HTTPServerHandler
    ) throws {
        let sync = channel.pipeline.syncOperations
        // One TLS record per flush, not one per frame.
        try sync.addHandler(OutboundWriteCoalescer(), position: .after(try sync.handler(type: NIOSSLServerHandler.self)))
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            // The same bound on a request's head as HTTP/1.1's decoder keeps.
            HTTP2Setting(parameter: .maxHeaderListSize, value: 80 * 1024),
        ]
        // Made first: it hears of every stream (through the stream delegate), closes the
        // connection once it has had none for the idle timeout, as an idle HTTP/1.1 connection
        // is, and on shutdown sends GOAWAY and waits for the open streams (see
        // `HTTP2ConnectionQuiescer`), at most `sendTimeout` more.
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: limits.idleTimeout, maxAge: nil, maxGraceTime: limits.sendTimeout, keepalive: nil))
        _ = try sync.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init(),
            streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let sync = stream.pipeline.syncOperations
                try sync.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                // Per stream: a request that arrives too slowly, or an answer the client stops
                // taking (its flow-control window stays shut), ends the stream, not the connection.
                // A stream channel keeps no byte queue of its own to ask about (and traps when
                // asked): the handler counts what the stream has sent instead.
                let sent = SentBytes()
                try sync.addHandler(ConnectionGuardHandler(limits: limits, sent: sent, queuedBytes: { _ in 0 }, onExpiry: onExpiry))
                let handler = makeHandler(.http2(sent))
                try sync.addHandler(handler)
                // Opened after shutdown began (the client had not yet seen the final GOAWAY):
                // answered as the connection's other streams are, promptly.
                if quiescer.isQuiescing { handler.startQuiescing() }
            }
        }
        // Between NIO's HTTP/2 handler and the manager: a connection the manager starts to close
        // is closed, even when NIO fails it midway or the client never answers (see
        // `HTTP2CloseGuard`), at most `sendTimeout` after its first GOAWAY.
        try sync.addHandler(HTTP2CloseGuard(bound: limits.sendTimeout))
        try sync.addHandler(manager)
        // The streams' guards see bytes leave each stream, not whether the client takes them off
        // the connection: this one watches the socket's queue (first, so under TLS).
        var onStall: (@Sendable () -> Void)?
        if let onExpiry { onStall = { onExpiry(.sendStalled) } }
        try sync.addHandler(SendStallGuard(limits: limits, onStall: onStall), position: .first)
        // The connection was active before ALPN added these handlers: the manager starts its
        // idle timer when it hears so (NIO's HTTP/2 handler, before it, already knows).
        try sync.context(handlerType: NIOHTTP2Handler.self).fireChannelActive()
    }

    /// Why an accepted connection was closed at once.
    public struct ConnectionRefused: Error, CustomStringConvertible {
        public var description: String { "connection limit reached" }
    }
}

/// Winds an HTTP/2 connection down on shutdown: NIO's connection management handler sends
/// GOAWAY and closes the connection once its streams have ended; each stream's
/// `HTTPServerHandler` hears the same event and ends its long-poll or SSE response.
///
/// NIO's handler first sends a GOAWAY that still admits streams, then, once the client has
/// answered its PING, the final one: streams opened in between are told by `isQuiescing`.
final class HTTP2ConnectionQuiescer: QuiescingHandler, Sendable {
    private let channel: any Channel
    /// Set (on the connection's event loop) once shutdown has begun.
    private let quiescing: NIOLoopBoundBox<Bool>

    init(channel: any Channel) {
        self.channel = channel
        self.quiescing = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
    }

    /// Read on the connection's event loop (where its streams are made).
    var isQuiescing: Bool { quiescing.value }

    /// Called on the connection's event loop (see `ConnectionRegistry`).
    func quiesce() {
        quiescing.value = true
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
