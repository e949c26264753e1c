import NIOCore
import ServerSupport
import StreamAuth
import Subscriptions

/// Everything an origin server can be told. Defaults are what `durable-streams origin` uses.
public struct OriginConfiguration: Sendable {
    /// Address to listen on.
    public var host = "127.0.0.1"
    /// Port to listen on; 0 picks a free one (see `OriginServer.port`).
    public var port = 4437
    /// How long a long-poll waits for data before answering 204.
    public var longPollTimeout: TimeAmount = .seconds(30)
    /// How often the server closes an SSE connection so that CDNs can re-collapse readers.
    public var sseReconnectInterval: TimeAmount = .seconds(60)
    /// Length of a cursor interval, in seconds (§10.1).
    public var cursorIntervalSeconds: Double = 20
    /// The most bytes one read returns. Generous, because some clients read a whole catch-up
    /// as one response.
    public var maxChunkBytes = 4 << 20
    /// Request bodies beyond this are refused with 413.
    public var maxBodyBytes = 64 << 20
    /// gzip/deflate responses when the client accepts them.
    public var compression = true
    /// Bodies smaller than this are never compressed: the framing would cost more than it saves.
    public var compressionThresholdBytes = 1024
    /// URL path under which streams live.
    public var streamPathPrefix = "/v1/stream/"
    /// Timeouts and caps on client connections (`header_timeout`, `max_connections`, …).
    public var limits = ConnectionLimits()
    /// Where one JSON line per request is appended (`-`: standard output); `nil`: no access log.
    public var accessLog: String?
    /// Who may do what (API keys, JWTs); off unless a credential source is configured.
    public var auth = AuthSettings()
    /// Listen with TLS (and offer HTTP/2) when set; plain HTTP/1.1 when `nil`.
    public var tls: TLSSettings?
    /// Subscriptions (§6–7) under `<prefix>__ds/`. Off, the reserved paths answer 404; either
    /// way no stream may be named under `__ds`.
    public var subscriptions = true
    /// Scheme and host clients reach the streams at (`https://streams.example.com`), for the
    /// URLs subscriptions hand out (`callback_url`, `jwks_url`: this, the stream prefix, then
    /// `__ds/…`). When unset they are built from each request's `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` (set by our edge) or `Host`.
    public var publicURL: String?
    /// The webhook signing key and the token secret; fresh random ones per process when unset
    /// (`durable-streams origin --data-dir` keeps them in the data directory).
    public var subscriptionKeys: SubscriptionKeys?
    /// Where subscriptions keep their state (links, acked offsets, generations, retry times)
    /// across restarts; in memory only when unset. `--data-dir` uses `<data-dir>/subscriptions`.
    public var subscriptionDirectory: String?
    /// A PEM file of the CA certificates `https` webhooks must chain to, instead of the system's.
    public var webhookCAFile: String?

    /// Event loop threads when the server creates its own group.
    public var eventLoopThreads = System.coreCount

    /// Called after a stream is created (not when an identical one already existed).
    public var onStreamCreated: (@Sendable (String) -> Void)?
    /// Called after a stream is deleted.
    public var onStreamDeleted: (@Sendable (String) -> Void)?

    public init() {}
}
