import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A webhook's answer: its status (a 3xx included, as redirects are not followed) and body.
public struct WebhookResponse: Sendable, Equatable {
    /// The HTTP status code of the final (non-1xx) response head.
    public var status: Int
    /// The whole response body, at most 64 KiB.
    public var body: [UInt8]

    /// A response as given (for callers' fakes and tests).
    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Why a delivery got no answer: what happened, in words fit for a log line.
///
/// (A delivery refused by the SSRF rule fails with `SubscriptionError` instead: status 400, code
/// `WEBHOOK_URL_REJECTED`, the same refusal `WebhookURL.parse` gives for an IP literal.)
public struct WebhookDeliveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which step failed; what a caller may act on (all of them are worth a retry later).
    public enum Kind: Sendable, Equatable {
        /// The host name did not resolve (or resolved to nothing).
        case resolution
        /// No connection could be made (refused, unreachable), or it broke while in use.
        case connection
        /// The TLS handshake failed: untrusted or mismatched certificate, protocol error.
        case tls
        /// `timeout` passed before the whole response arrived.
        case timeout
        /// The server closed the connection before a complete response.
        case closed
        /// The response body was longer than 64 KiB.
        case responseTooLarge
        /// The response was not HTTP/1.x.
        case malformedResponse
    }

    /// Which step failed.
    public var kind: Kind
    /// What happened, naming the host (and address, when one was reached).
    public var message: String
    public var description: String { message }

    /// An error of `kind` saying `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Delivers webhook requests: one `POST` per connection (HTTP/1.1 on NIO's client pipeline,
/// TLS by swift-nio-ssl for `https`), after the SSRF check on every address the host resolves to.
///
/// Why it resolves names itself rather than letting the bootstrap do it: the check must judge
/// the very address that is then connected to. A second lookup could answer differently (DNS
/// rebinding), so the addresses checked are the addresses used, and an IP literal is never
/// looked up at all. Lookups are blocking (`getaddrinfo`), so they run on `threadPool`, never on
/// an event loop.
///
/// A connection per delivery, not a pool: `Connection: close` means no connection outlives its
/// request, so a subscriber's server never sees idle connections from here, and each delivery's
/// addresses are judged afresh.
public final class WebhookClient: Sendable {
    /// The largest response body accepted; a longer one fails the delivery (`.responseTooLarge`)
    /// rather than being cut short, so that a caller never reads a truncated body as whole.
    static let maximumResponseBody = 64 * 1024

    private let group: any EventLoopGroup
    private let threadPool: NIOThreadPool
    private let resolve: @Sendable (String, Int) throws -> [SocketAddress]
    /// Made once: building a context loads the trust roots, which is file I/O.
    private let tlsContext: Result<NIOSSLContext, any Error>

    /// - Parameters:
    ///   - group: where connections run; it must be NIOPosix's (`MultiThreadedEventLoopGroup`).
    ///   - threadPool: a started pool, where host names are resolved.
    ///   - trustRoots: the CAs a webhook's certificate must chain to (tests pass their own CA).
    ///     Should a context not be made from them, every `https` delivery fails with `.tls`.
    ///   - resolve: resolves a host name to addresses, for tests; it runs on `threadPool` and may
    ///     block. `nil`: the system resolver (`getaddrinfo`). Ports in what it returns are
    ///     replaced by the URL's.
    public init(
        group: any EventLoopGroup,
        threadPool: NIOThreadPool,
        trustRoots: NIOSSLTrustRoots = .default,
        resolve: (@Sendable (_ host: String, _ port: Int) throws -> [SocketAddress])? = nil
    ) {
        self.group = group
        self.threadPool = threadPool
        self.resolve = resolve ?? Self.systemResolve
        if case .default = trustRoots {
            tlsContext = Self.systemTrustContext
        } else {
            tlsContext = Result { try Self.makeContext(trustRoots) }
        }
    }

    /// The context for the system's trust roots, made once per process (Swift runs a static's
    /// initialiser once, thread-safely): every client shares it, rather than each one reading
    /// and parsing the system's CA bundle again (the tests start hundreds of origins).
    private static let systemTrustContext: Result<NIOSSLContext, any Error> = Result { try makeContext(.default) }

    private static func makeContext(_ trustRoots: NIOSSLTrustRoots) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = trustRoots
        configuration.certificateVerification = .fullVerification
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    /// POSTs `body` to `url` with `headers`, plus `Host`, `Content-Length` and
    /// `Connection: close` (which replace any of those, or `Transfer-Encoding`, in `headers`).
    ///
    /// The future fails with `SubscriptionError` (400 `WEBHOOK_URL_REJECTED`) when any address
    /// the host resolves to is refused by the SSRF rule (nothing is connected to then), and with
    /// `WebhookDeliveryError` when there is no complete answer: resolution, connection or TLS
    /// failure, the connection closing early, a body over 64 KiB, or `timeout` passing. `timeout`
    /// bounds all of it, from resolving to the last byte of the response. A 3xx is an answer
    /// like any other: redirects are not followed (they could point anywhere).
    public func post(
        _ url: WebhookURL, headers: [(String, String)], body: [UInt8], timeout: TimeAmount
    ) -> EventLoopFuture<WebhookResponse> {
        let loop = group.next()
        let promise = loop.makePromise(of: WebhookResponse.self)
        // Set once the promise completes, so that work finishing after a timeout (a lookup that
        // was still blocked, a connect in flight) starts nothing further.
        let settled = NIOLockedValueBox(false)
        promise.futureResult.whenComplete { _ in settled.withLockedValue { $0 = true } }
        let deadline = NIODeadline.now() + timeout
        let timer = loop.scheduleTask(deadline: deadline) {
            promise.fail(
                WebhookDeliveryError(
                    .timeout, "no complete response from \(url) within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }

        let lookup: EventLoopFuture<[SocketAddress]>
        if let literal = url.literalAddress {
            lookup = loop.makeSucceededFuture([literal])
        } else {
            let resolve = self.resolve
            lookup = threadPool.runIfActive(eventLoop: loop) { try resolve(url.host, url.port) }
        }
        lookup.whenComplete { result in
            guard !settled.withLockedValue({ $0 }) else { return }
            switch result {
            case .failure(let error as WebhookDeliveryError):
                promise.fail(error)
            case .failure(let error):
                promise.fail(WebhookDeliveryError(.resolution, "could not resolve \(url.host): \(error)"))
            case .success(let found):
                guard !found.isEmpty else {
                    promise.fail(WebhookDeliveryError(.resolution, "\(url.host) resolved to no addresses"))
                    return
                }
                var addresses: [SocketAddress] = []
                for var address in found {
                    if let reason = WebhookAddressPolicy.refusal(of: address, loopbackException: url.isLocalDevelopment) {
                        promise.fail(
                            SubscriptionError(
                                status: 400, code: "WEBHOOK_URL_REJECTED",
                                "webhook URL rejected: \(url.host) resolves to a \(reason)"))
                        return
                    }
                    address.port = url.port
                    addresses.append(address)
                }
                self.connect(
                    to: addresses[...], url: url, request: Self.request(url, headers: headers, bodyLength: body.count), body: body,
                    deadline: deadline, on: loop, promise: promise, settled: settled)
            }
        }
        return promise.futureResult
    }

    private static func request(_ url: WebhookURL, headers: [(String, String)], bodyLength: Int) -> HTTPRequestHead {
        let ours: Set<String> = ["host", "content-length", "connection", "transfer-encoding"]
        var fields = HTTPHeaders([("Host", url.hostHeader)])
        for (name, value) in headers where !ours.contains(name.lowercased()) {
            fields.add(name: name, value: value)
        }
        fields.add(name: "Content-Length", value: String(bodyLength))
        fields.add(name: "Connection", value: "close")
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target, headers: fields)
    }

    /// Tries each address in turn until one accepts a connection; the request goes only to that
    /// one. Only failures to connect move on: once connected, the request may have been
    /// delivered, so a later failure is the delivery's.
    private func connect(
        to addresses: ArraySlice<SocketAddress>, url: WebhookURL, request: HTTPRequestHead, body: [UInt8],
        deadline: NIODeadline, on loop: any EventLoop, promise: EventLoopPromise<WebhookResponse>,
        settled: NIOLockedValueBox<Bool>
    ) {
        guard let address = addresses.first, !settled.withLockedValue({ $0 }) else { return }
        guard let bootstrap = ClientBootstrap(validatingGroup: loop) else {
            promise.fail(WebhookDeliveryError(.connection, "the event loop group cannot open sockets"))
            return
        }
        let tls: NIOSSLContext?
        switch (url.isTLS, tlsContext) {
        case (false, _): tls = nil
        case (true, .success(let context)): tls = context
        case (true, .failure(let error)):
            promise.fail(WebhookDeliveryError(.tls, "no TLS client context: \(error)"))
            return
        }
        // SNI and certificate names are the URL's host; for an IP literal there is no SNI and
        // NIOSSL checks the certificate against the connected address, which is that literal.
        let serverName: String? =
            url.literalAddress == nil ? (url.host.hasSuffix(".") ? String(url.host.dropLast()) : url.host) : nil
        let head = request
        let remaining = max(deadline - .now(), .milliseconds(1))
        bootstrap
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        ExchangeHandler(request: head, body: body, url: url, promise: promise))
                }
            }
            .connect(to: address)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Answered, failed or timed out: the connection has done its work.
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    let rest = addresses.dropFirst()
                    if let error = error as? ChannelError, case .connectTimeout = error {
                        promise.fail(
                            WebhookDeliveryError(.timeout, "connecting to \(url.host) (\(address)) timed out"))
                    } else if rest.isEmpty {
                        promise.fail(Self.failure(error, url: url, address: address))
                    } else {
                        self.connect(
                            to: rest, url: url, request: request, body: body, deadline: deadline, on: loop,
                            promise: promise, settled: settled)
                    }
                }
            }
    }

    /// An error from a connection, as a `WebhookDeliveryError` saying what failed.
    static func failure(_ error: any Error, url: WebhookURL, address: SocketAddress?) -> WebhookDeliveryError {
        let peer = address.map { "\(url.host) (\($0))" } ?? url.host
        switch error {
        case let error as WebhookDeliveryError:
            return error
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            return WebhookDeliveryError(.tls, "TLS with \(peer) failed: \(error)")
        case is HTTPParserError:
            return WebhookDeliveryError(.malformedResponse, "\(peer) sent a malformed HTTP response: \(error)")
        default:
            return WebhookDeliveryError(.connection, "connection to \(peer) failed: \(error)")
        }
    }

    /// Sends the request once connected, and gathers the response up to its end.
    private final class ExchangeHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        private let request: HTTPRequestHead
        private var body: [UInt8]
        private let url: WebhookURL
        private let promise: EventLoopPromise<WebhookResponse>
        private var status: Int?
        private var received: [UInt8] = []
        /// Set once the response is whole or refused: what still arrives before the close is dropped.
        private var finished = false

        init(request: HTTPRequestHead, body: [UInt8], url: WebhookURL, promise: EventLoopPromise<WebhookResponse>) {
            self.request = request
            self.body = body
            self.url = url
            self.promise = promise
        }

        func channelActive(context: ChannelHandlerContext) {
            // Written at once even with TLS: NIOSSL holds writes until its handshake is done.
            let written = context.eventLoop.makePromise(of: Void.self)
            let promise = self.promise
            let url = self.url
            written.futureResult.whenFailure { error in
                promise.fail(WebhookClient.failure(error, url: url, address: nil))
            }
            context.write(wrapOutboundOut(.head(request)), promise: nil)
            if !body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
                body = []
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !finished else { return }
            switch unwrapInboundIn(data) {
            case .head(let head):
                // 1xx heads are interim; the answer is the head that follows.
                guard head.status.code >= 200 else { return }
                status = Int(head.status.code)
                received = []
            case .body(let part):
                guard status != nil else { return }
                guard received.count + part.readableBytes <= WebhookClient.maximumResponseBody else {
                    finished = true
                    promise.fail(
                        WebhookDeliveryError(
                            .responseTooLarge,
                            "\(url.host) answered with a body over \(WebhookClient.maximumResponseBody) bytes"))
                    context.close(promise: nil)
                    return
                }
                received.append(contentsOf: part.readableBytesView)
            case .end:
                guard let status else { return }
                finished = true
                promise.succeed(WebhookResponse(status: status, body: received))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            // After success or failure this does nothing: a promise keeps its first result.
            promise.fail(WebhookDeliveryError(.closed, "\(url.host) closed the connection before a complete response"))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(WebhookClient.failure(error, url: url, address: context.channel.remoteAddress))
            context.close(promise: nil)
        }
    }

    /// The system resolver: `getaddrinfo`, TCP addresses of either family, in its order.
    /// Blocking: it runs on the thread pool.
    @Sendable static func systemResolve(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &list)
        guard code == 0 else {
            throw WebhookDeliveryError(.resolution, "could not resolve \(host): \(String(cString: gai_strerror(code)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor = list
        while let entry = cursor?.pointee {
            cursor = entry.ai_next
            guard let raw = entry.ai_addr else { continue }
            switch entry.ai_family {
            case AF_INET:
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
            case AF_INET6:
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
            default:
                continue
            }
        }
        return addresses
    }
}
