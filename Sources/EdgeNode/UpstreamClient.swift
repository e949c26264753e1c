import DurableStreams
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServerSupport

/// A whole response from upstream.
public struct UpstreamResponse: Sendable {
    public var head: HTTPResponseHead
    /// The body; empty for HEAD requests, 204 and 304.
    public var body: ByteBuffer
    /// The protocol facts of `head`, parsed once on arrival.
    public var facts: ReadFacts
    /// The headers the edge passes this answer on with, built once per flight for all of its
    /// waiters (`EdgeService.headersToServe`); `nil` until then.
    public var headersToServe: HTTPHeaders?
    /// This answer as bytes with `headersToServe`, serialized once per flight: each waiter that
    /// receives it unchanged costs a write of shared bytes. `nil` until built, or once the
    /// answer is changed for one waiter (`replaceCursor`).
    public var encoded: EncodedResponse?
    /// This answer given other cursors, one per distinct cursor, shared by the flight's waiters
    /// (`EdgeService.adoptingCursor`); set with `encoded`.
    var adopted: AdoptedAnswers?

    public init(head: HTTPResponseHead, body: ByteBuffer) {
        self.head = head
        self.body = body
        self.facts = ReadFacts(head.headers)
    }

    /// Gives this answer another `Stream-Cursor`, everywhere the answer keeps it.
    public mutating func replaceCursor(with cursor: String) {
        head.headers.replaceOrAdd(name: HeaderName.cursor, value: cursor)
        headersToServe?.replaceOrAdd(name: HeaderName.cursor, value: cursor)
        facts.cursor = cursor
        encoded = nil
        adopted = nil
    }
}

/// Why a request to upstream failed.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// Could not open a connection (refused, unreachable, connect timeout).
        case connectFailed
        /// The request's timeout passed; its connection, if any, was closed.
        case timedOut
        /// The connection failed or closed before the response was complete. Also the kind of
        /// a request cancelled through `UpstreamCancellation` (the description says so).
        case connectionClosed
        /// Every connection was busy and the queue was full.
        case poolQueueFull
        /// The client was shut down.
        case shutdown
        /// The answer's body is larger than the client's `maxResponseBytes`; its connection was
        /// closed rather than read to the end.
        case responseTooLarge
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// Cancels an `execute` in flight (e.g. the last client waiting for a long-poll left): a
/// waiting request leaves the queue; a running one has its connection closed, which frees its
/// pool slot. The request's future fails with `.connectionClosed` unless it had already
/// completed. Use one token per request (or per group of requests cancelled together).
public final class UpstreamCancellation: Sendable {
    private let state = NIOLockedValueBox<(cancelled: Bool, handlers: [@Sendable () -> Void])>((false, []))

    public init() {}

    public var isCancelled: Bool { state.withLockedValue { $0.cancelled } }

    public func cancel() {
        let handlers = state.withLockedValue { state -> [@Sendable () -> Void] in
            if state.cancelled { return [] }
            state.cancelled = true
            defer { state.handlers = [] }
            return state.handlers
        }
        for handler in handlers { handler() }
    }

    /// Runs `handler` on cancellation, or now if already cancelled.
    func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { state in
            if state.cancelled { return true }
            state.handlers.append(handler)
            return false
        }
        if now { handler() }
    }
}

/// An HTTP/1.1 client for one upstream (an origin or another edge), on NIO's client pipeline.
///
/// Buffered requests (`execute`) share a pool of at most `maxConnections` keep-alive
/// connections; requests beyond that wait first in, first out, up to `maxQueued`, and beyond
/// that fail at once with `.poolQueueFull`. A connection is discarded after an error, a
/// timeout, a cancellation or a `Connection: close` response, and dropped from the idle list as
/// soon as the server closes it. A safe request (GET, HEAD, OPTIONS) whose reused connection
/// closes before any response is sent again (up to 3 times) on another.
///
/// SSE (`stream`) gets a dedicated connection outside the pool.
///
/// ```swift
/// let upstream = UpstreamClient(host: "127.0.0.1", port: 4437, group: group, maxConnections: 64)
/// let response = try await upstream.execute(
///     HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/stream/a?offset=-1"),
///     body: nil, timeout: .seconds(10), on: loop).get()
/// await upstream.shutdown()
/// ```
public final class UpstreamClient: Sendable {
    public let host: String
    public let port: Int
    private let pool: UpstreamConnectionPool

    /// - Parameters:
    ///   - maxConnections: the most pooled connections open (or opening) at once; must be positive.
    ///   - maxQueued: the most requests waiting for a connection beyond those a pending connect
    ///     will serve.
    ///   - connectTimeout: the limit on one TCP connect.
    ///   - maxResponseBytes: the largest body a buffered answer (`execute`) may have; a larger
    ///     one fails with `.responseTooLarge` as soon as its `Content-Length` or its bytes so far
    ///     say so. `nil`: no bound, for an upstream trusted to keep its answers small (the
    ///     origin bounds its reads by `max_chunk_bytes`).
    public convenience init(
        host: String, port: Int, group: any EventLoopGroup, maxConnections: Int, maxQueued: Int = 10_000,
        connectTimeout: TimeAmount = .seconds(2), maxResponseBytes: Int? = nil
    ) {
        self.init(host: host, port: port, group: group, maxConnections: maxConnections, maxQueued: maxQueued,
                  connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes, tls: nil)
    }

    /// A client whose connections speak TLS when `tls` is set (an `https://` upstream).
    init(
        host: String, port: Int, group: any EventLoopGroup, maxConnections: Int, maxQueued: Int = 10_000,
        connectTimeout: TimeAmount = .seconds(2), maxResponseBytes: Int? = nil, tls: UpstreamTLS?
    ) {
        self.host = host
        self.port = port
        self.pool = UpstreamConnectionPool(
            host: host, port: port, group: group, maxConnections: maxConnections, maxQueued: maxQueued,
            connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes, tls: tls)
    }

    /// Sends one request and buffers the whole response. `head.uri` is path and query; the
    /// client sets `Host` and `Content-Length` (and drops `Transfer-Encoding`).
    ///
    /// `timeout` bounds the whole exchange, waiting for a connection included; on timeout the
    /// connection is closed, not reused, and the future fails with `.timedOut`. Cancelling
    /// `cancellation` abandons the request (see `UpstreamCancellation`). The future completes
    /// on `eventLoop`.
    public func execute(
        _ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, on eventLoop: any EventLoop,
        cancellation: UpstreamCancellation? = nil
    ) -> EventLoopFuture<UpstreamResponse> {
        pool.execute(head, body: body, timeout: timeout, on: eventLoop, cancellation: cancellation)
    }

    /// Streams a response (for SSE) on a dedicated connection that is not pooled and does not
    /// count against `maxConnections`: `onHead` once, `onBody` per chunk, then `onEnd(nil)`
    /// when the response ends or `onEnd(error)` when it fails; `onEnd` is called exactly once,
    /// also after `cancel()` (with a `.connectionClosed` error), and nothing follows it.
    /// Callbacks run on `eventLoop`. There is no timeout but the connect timeout.
    public func stream(
        _ head: HTTPRequestHead, on eventLoop: any EventLoop, onHead: @escaping @Sendable (HTTPResponseHead) -> Void,
        onBody: @escaping @Sendable (ByteBuffer) -> Void, onEnd: @escaping @Sendable ((any Error)?) -> Void
    ) -> UpstreamStream {
        pool.stream(head, on: eventLoop, onHead: onHead, onBody: onBody, onEnd: onEnd)
    }

    /// Fails waiting requests with `.shutdown`, fails requests and streams in flight, closes
    /// every connection and returns once they are closed. Later calls fail with `.shutdown`.
    public func shutdown() async {
        await pool.shutdown()
    }

    /// For metrics: pooled connections open (idle, busy or closing), idle ones, and requests
    /// waiting for a connection. SSE connections are not counted.
    public var poolStats: (open: Int, idle: Int, queued: Int) { pool.stats }

    /// The most pooled connections (open or being opened) there have been at once.
    var peakConnections: Int { pool.peakConnections }
}

/// A response being streamed by `UpstreamClient.stream`.
public final class UpstreamStream: Sendable {
    private let core: UpstreamStreamCore

    init(core: UpstreamStreamCore) {
        self.core = core
    }

    /// Closes the connection. `onEnd` follows (once) with a `.connectionClosed` error unless
    /// the response had already ended; called on the stream's loop, no `onHead` or `onBody`
    /// follow it.
    public func cancel() {
        core.cancel(UpstreamError(.connectionClosed, "stream cancelled"))
    }
}
