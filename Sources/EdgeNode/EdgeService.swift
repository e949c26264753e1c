import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport

/// The edge's request logic: routing, the cache, collapsing, pass-through, coherence.
/// Stateless apart from the shared cache, flights and tails; runs on the calling connection's
/// event loop and never blocks it.
final class EdgeService: HTTPResponder {
    let configuration: EdgeConfiguration
    let upstream: UpstreamClient
    /// Long-polls hold a connection for up to the upstream's long-poll timeout, so they get a pool
    /// of their own: catch-up reads and writes never queue behind them.
    let liveUpstream: UpstreamClient
    let cache: ResponseCache
    let metrics: EdgeMetrics
    let flights = Collapser<CacheKey, UpstreamResponse>()
    let revalidations = Collapser<CacheKey, UpstreamResponse>()
    let tails = TailTracker()
    let lifetimes = StreamLifetimes()
    let fanout: SSEFanout
    let cursors = CursorPolicy()
    /// Open client connections, for the stats page.
    let connections: @Sendable () -> Int

    init(configuration: EdgeConfiguration, upstream: UpstreamClient, liveUpstream: UpstreamClient, metrics: EdgeMetrics,
         connections: @escaping @Sendable () -> Int) {
        self.configuration = configuration
        self.upstream = upstream
        self.liveUpstream = liveUpstream
        self.cache = ResponseCache(budgetBytes: configuration.cacheBudgetBytes)
        self.fanout = SSEFanout(upstream: upstream)
        self.metrics = metrics
        self.connections = connections
    }

    var maxBodyBytes: Int { configuration.maxBodyBytes }

    func connectionOpened() { metrics.openConnections.increment() }
    func connectionClosed() { metrics.openConnections.decrement() }

    func refusal(_ error: ProtocolError) -> ServerReply {
        Self.text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", cache: "PASS")
    }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let uri = request.head.uri
        let queryStart = uri.firstIndex(of: "?")
        let path = String(uri[..<(queryStart ?? uri.endIndex)])
        let query = queryStart.map { uri[uri.index(after: $0)...] } ?? ""
        let method = request.head.method

        // Only the first Authorization would be in the cache key, yet every one would go
        // upstream: two requests that differ in the others would share an entry they may not
        // both be entitled to. No client needs two, so refuse rather than guess.
        if request.head.headers["Authorization"].count > 1 {
            return loop.makeSucceededFuture(Self.text(.badRequest, "more than one Authorization header\n", cache: "PASS"))
        }

        if method == .GET {
            switch path {
            case configuration.metricsPath:
                return loop.makeSucceededFuture(Self.local("text/plain; version=0.0.4", metrics.render(cache: cache.stats)))
            case configuration.statsPath:
                return loop.makeSucceededFuture(Self.local("application/json", metrics.json(cache: cache.stats, openConnections: connections())))
            case configuration.dashboardPath:
                return loop.makeSucceededFuture(Self.local("text/html; charset=utf-8", Array(EdgeDashboard.html(statsPath: configuration.statsPath).utf8)))
            default:
                break
            }
        }
        guard path.hasPrefix(configuration.streamPathPrefix) else {
            return forward(request, kind: .other, live: live, loop: loop)
        }
        // The upstream decodes the path, so many spellings name one stream (`a-b`, `a%2Db`):
        // everything kept per stream is keyed by the canonical name, or a write under one
        // spelling would leave another's entries behind. A name the upstream will refuse is
        // its to answer (400), and is neither cached nor collapsed.
        guard let stream = try? StreamPath.canonicalName(urlPath: Substring(path), prefix: configuration.streamPathPrefix) else {
            return forward(request, kind: .other, live: live, loop: loop)
        }
        // Decode only to classify; anything the edge does not understand is the upstream's to judge.
        let operation = try? StreamOperation.decode(
            method: method.rawValue, query: query, header: { request.head.headers.first(name: $0) },
            bodyLength: request.body.readableBytes)
        switch operation {
        case .read(let read)?:
            switch read.mode {
            case .sse:
                return sse(stream, read, request: request, live: live, loop: loop)
            case .catchUp, .longPoll:
                return self.read(stream, read, request: request, live: live, loop: loop)
            }
        case .head?:
            return forward(request, kind: .head, live: live, loop: loop)
        case .create?:
            return forward(request, kind: .write, live: nil, loop: loop).map { [cache, tails, lifetimes] reply in
                // A new stream at a path that had one before must not be served the old one's entries.
                if case .response(let head, _) = reply, head.status == .created {
                    cache.purge(stream: stream)
                    tails.forget(stream)
                    lifetimes.forget(stream)
                }
                return reply
            }
        case .append?:
            return forward(request, kind: .write, live: nil, loop: loop)
        case .delete?:
            return forward(request, kind: .write, live: nil, loop: loop).map { [cache, tails, lifetimes] reply in
                if case .response(let head, _) = reply, head.status == .noContent || head.status == .notFound {
                    cache.purge(stream: stream)
                    tails.forget(stream)
                    lifetimes.forget(stream)
                }
                return reply
            }
        case nil:
            return forward(request, kind: .other, live: live, loop: loop)
        }
    }

    // MARK: - Reads

    /// `countsRequest: false` for the reads an SSE session makes to catch a client up: they are part of
    /// that one SSE request, not requests of their own, and are not counted as such.
    private func read(
        _ stream: String, _ read: StreamOperation.Read, request: ServerRequest, live: LiveRequest, countsRequest: Bool = true,
        loop: any EventLoop
    ) -> EventLoopFuture<ServerReply> {
        let kind: RequestClass = read.mode == .catchUp ? .catchUp : .longPoll
        let credentials = request.head.headers.first(name: "Authorization")
        if credentials != nil && configuration.credentials == .bypass {
            return forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop)
        }
        guard let plainKey = CacheKey(stream: stream, start: read.start, mode: read.mode, credentials: credentials) else {
            return forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop)  // offset=now: the tail position must not be cached
        }
        // Cached bodies are stored as the upstream sent them, so gzip and identity are separate
        // entries; every other encoding is asked for as identity.
        let gzip = Self.acceptsGzip(request.head.headers)
        let key = gzip ? plainKey.gzipVariant : plainKey
        // Long-polls at one offset share one upstream request whatever their cursors: cursors
        // drift apart (the origin adds random jitter, and late or new readers start new
        // sequences), and keyed by cursor, readers of one stream would end up in many flights.
        // Each follower's answer then carries a cursor of its own (`adoptingCursor`).
        var flightKey = key
        if case .longPoll(.some) = read.mode,
            let plain = CacheKey(stream: stream, start: read.start, mode: .longPoll(cursor: nil), credentials: credentials)
        {
            flightKey = gzip ? plain.gzipVariant : plain
        }
        let now = configuration.clock()
        let cached = cache.get(key)
        if let entry = cached {
            // One look at the stream's lifetime per cached read: gone, or alive (and due a renewal).
            let lifetime = lifetimes.cachedRead(stream, now: configuration.wallClock())
            switch lifetime == .expired ? .expired : freshness(of: entry, kind: kind, stream: stream, at: now) {
            case .fresh:
                if lifetime == .renewalDue { renewTTL(stream, credentials: credentials, loop: loop) }
                return loop.makeSucceededFuture(serve(entry, outcome: .hit, kind: kind, ifNoneMatch: read.ifNoneMatch, now: now, countsRequest: countsRequest))
            case .stale where kind == .catchUp:
                if lifetime == .renewalDue { renewTTL(stream, credentials: credentials, loop: loop) }
                revalidate(key, entry, kind: kind, loop: loop)
                return loop.makeSucceededFuture(serve(entry, outcome: .stale, kind: kind, ifNoneMatch: read.ifNoneMatch, now: now, countsRequest: countsRequest))
            case .stale, .expired:
                break  // a live answer must carry a fresh cursor: ask the upstream again
            }
        }
        // An expired entry is still the answer of last resort while the upstream fails.
        let fallback = cached

        var head = upstreamHead(request.head)
        head.headers.remove(name: "If-None-Match")  // the edge wants the body to cache; it answers 304 itself
        head.headers.remove(name: "Accept-Encoding")
        if gzip { head.headers.add(name: "Accept-Encoding", value: "gzip") }
        // Catch-up entries are revalidated; a long-poll must come back with its own fresh cursor.
        if kind == .catchUp, let etag = fallback?.etag { head.headers.add(name: "If-None-Match", value: etag) }
        let timeout = kind == .longPoll ? configuration.upstreamLongPollTimeout : configuration.upstreamTimeout
        let joined = flights.join(flightKey, on: loop) { fetch(head, key: key, kind: kind, timeout: timeout, loop: loop) }
        live.onCancel { [flights] in flights.leave(joined.ticket) }
        let outcome: CacheOutcome = joined.isLeader ? .miss : .collapsed
        let servedStale = { [self] () -> ServerReply? in
            guard let fallback, let limit = fallback.errorDeadline(configuration.staleIfError), configuration.clock() < limit,
                !lifetimes.isExpired(stream, now: configuration.wallClock())
            else {
                return nil
            }
            return serve(fallback, outcome: .stale, kind: kind, ifNoneMatch: read.ifNoneMatch, now: configuration.clock(), countsRequest: countsRequest)
        }
        // Isolated to the client's loop, where the flight's promise completes: the callbacks may
        // use this request's loop-bound state.
        return joined.future.assumeIsolated().flatMap { [self] response -> EdgeFuture in
            if response.head.status == .notModified {
                // The upstream confirmed the entry this flight validated. It may have been evicted
                // or purged meanwhile; the copy this request holds still answers (never our 304).
                if let entry = cache.get(key) ?? fallback {
                    return loop.makeSucceededFuture(serve(entry, outcome: .revalidated, kind: kind, ifNoneMatch: read.ifNoneMatch, now: configuration.clock(), countsRequest: countsRequest))
                }
                return forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop)
            }
            // An upstream that answers 5xx is failing as much as one that does not answer (RFC 5861 §4).
            if response.head.status.code >= 500, let stale = servedStale() {
                return loop.makeSucceededFuture(stale)
            }
            // A private answer is for the request that asked; followers without credentials
            // must not receive it through the flight, so they ask for themselves.
            if !joined.isLeader, key.credentials == nil, CacheControl(response.head.headers.first(name: "Cache-Control")).isPrivate {
                return forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop)
            }
            let answer = joined.isLeader ? response : Self.adoptingCursor(response, client: read.mode.cursor)
            return loop.makeSucceededFuture(relay(answer, outcome: outcome, kind: kind, ifNoneMatch: read.ifNoneMatch, countsRequest: countsRequest))
        }.recover { [self] error in
            if let stale = servedStale() { return stale }
            if countsRequest { metrics.request(kind, outcome) }
            return Self.upstreamFailure(error)
        }.nonisolated()
    }

    private typealias EdgeFuture = EventLoopFuture<ServerReply>

    /// `live=sse`: the first catch-up read decides the answer (a 404 stays a 404); after that the
    /// client is served by an `EdgeSSESession`.
    private func sse(_ stream: String, _ read: StreamOperation.Read, request: ServerRequest, live: LiveRequest, loop: any EventLoop)
        -> EventLoopFuture<ServerReply>
    {
        let credentials = request.head.headers.first(name: "Authorization")
        // The subscription is shared by every spelling of the stream: it asks for the one the
        // edge renders, not whichever the first client happened to use.
        let subscriptionHead = {
            var head = upstreamHead(request.head)
            head.uri = StreamPath.urlPath(forName: stream, prefix: configuration.streamPathPrefix)
            return head
        }()
        return catchUp(stream: stream, start: read.start, credentials: credentials, live: live, loop: loop).map { head, body in
            guard head.status == .ok else { return .response(head, body: [body]) }
            let contentType = head.headers.first(name: "Content-Type").flatMap(ContentType.init) ?? .octetStream
            var headers: HTTPHeaders = [
                // Closed when the response ends (SSEOutput.finish); said up front so
                // clients open a new connection for the next request.
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "close",
            ]
            headers.add(contentsOf: BrowserHeaders.all)
            if !contentType.isTextual { headers.add(name: HeaderName.sseDataEncoding, value: "base64") }
            let shared = self.fanout.hasSubscription(stream + "\u{0}" + (credentials ?? ""))
            headers.add(name: "X-Cache", value: (shared ? CacheOutcome.collapsed : CacheOutcome.miss).rawValue)
            let plan = EdgeSSESession.Plan(
                stream: stream, credentials: credentials, clientCursor: read.mode.cursor.map(String.init), firstHeaders: head.headers,
                firstBody: body, base64: !contentType.isTextual, upstreamHead: subscriptionHead)
            return .sse(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), start: { loop in
                EdgeSSESession(service: self, plan: plan, loop: loop)
            })
        }
    }

    /// A catch-up read through the cache on a client's behalf (SSE sessions catching up).
    func catchUpRead(stream: String, from offset: StreamOffset, credentials: String?, loop: any EventLoop)
        -> EventLoopFuture<(HTTPResponseHead, ByteBuffer)>
    {
        catchUp(stream: stream, start: .offset(offset), credentials: credentials, live: LiveRequest(), loop: loop)
    }

    private func catchUp(stream: String, start: ReadStart, credentials: String?, live: LiveRequest, loop: any EventLoop)
        -> EventLoopFuture<(HTTPResponseHead, ByteBuffer)>
    {
        let offset: String
        switch start {
        case .beginning: offset = "-1"
        case .now: offset = "now"
        case .offset(let value): offset = value.description
        }
        let path = StreamPath.urlPath(forName: stream, prefix: configuration.streamPathPrefix)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(path)?offset=\(offset)")
        if let credentials { head.headers.add(name: "Authorization", value: credentials) }
        let read = StreamOperation.Read(start: start, mode: .catchUp)
        return self.read(stream, read, request: ServerRequest(head: head, body: ByteBuffer()), live: live, countsRequest: false, loop: loop).map { reply in
            switch reply {
            case .response(let head, let body): return (head, Self.joined(body))
            case .fileResponse, .sse: return (HTTPResponseHead(version: .http1_1, status: .internalServerError), ByteBuffer())
            }
        }
    }

    /// The cursor for a live answer the edge renders itself (§10.1).
    func cursor(after clientCursor: String?) -> UInt64 {
        cursors.nextCursor(after: clientCursor.map { Substring($0) }, now: configuration.wallClock())
    }

    /// The one upstream request of a flight; its answer is stored before any waiter sees it,
    /// so late arrivals find it in the cache.
    private func fetch(_ head: HTTPRequestHead, key: CacheKey, kind: RequestClass, timeout: TimeAmount, loop: any EventLoop)
        -> Collapser<CacheKey, UpstreamResponse>.Call
    {
        metrics.upstream(kind)
        let started = NIODeadline.now()
        let cancellation = UpstreamCancellation()
        let client = kind == .longPoll ? liveUpstream : upstream
        let result = client.execute(head, body: nil, timeout: timeout, on: loop, cancellation: cancellation).map { [self] response -> UpstreamResponse in
            metrics.upstreamLatency.record(Double((NIODeadline.now() - started).nanoseconds) / 1e9)
            observeTail(key.stream, response.head.headers)
            lifetimes.observe(key.stream, status: response.head.status, response.head.headers, now: configuration.wallClock())
            store(response, under: key)
            return response
        }
        result.whenFailure { [metrics] _ in
            // Abandoning a request nobody waits for any more is not an upstream failure.
            if !cancellation.isCancelled { metrics.upstreamFailed() }
        }
        return .init(result: result, cancel: { cancellation.cancel() })
    }

    private func store(_ response: UpstreamResponse, under key: CacheKey) {
        let now = configuration.clock()
        if response.head.status == .notModified {
            if let entry = cache.get(key), let fresh = entry.freshUntil {
                let lifetime = fresh - entry.storedAt
                let staleWindow = (entry.staleUntil ?? fresh) - fresh
                cache.refresh(key, storedAt: now, freshUntil: now + lifetime, staleUntil: now + lifetime + staleWindow)
            }
            return
        }
        let decision = CachePolicy.decide(
            status: response.head.status, headers: response.head.headers, credentialed: key.credentials != nil,
            defaultStale: configuration.staleWhileRevalidate)
        let entry: CachedResponse
        switch decision {
        case .doNotStore:
            return
        case .immutable:
            entry = CachedResponse(status: response.head.status, headers: Self.endToEnd(response.head.headers), body: response.body,
                                   storedAt: now, freshUntil: nil, staleUntil: nil, etag: response.head.headers.first(name: "ETag"))
        case .expiring(let fresh, let stale):
            entry = CachedResponse(status: response.head.status, headers: Self.endToEnd(response.head.headers), body: response.body,
                                   storedAt: now, freshUntil: now + fresh, staleUntil: now + fresh + stale,
                                   etag: response.head.headers.first(name: "ETag"))
        }
        cache.put(key, entry)
    }

    /// Renews a sliding TTL that reads served from the cache would otherwise let run out (see
    /// `StreamLifetimes`): one background `GET ?offset=now`, which renews it and returns nothing.
    private func renewTTL(_ stream: String, credentials: String?, loop: any EventLoop) {
        var head = HTTPRequestHead(
            version: .http1_1, method: .GET,
            uri: StreamPath.urlPath(forName: stream, prefix: configuration.streamPathPrefix) + "?offset=now")
        if let credentials { head.headers.add(name: "Authorization", value: credentials) }
        metrics.upstream(.catchUp)
        let lifetimes = self.lifetimes
        let wallClock = configuration.wallClock
        upstream.execute(head, body: nil, timeout: configuration.upstreamTimeout, on: loop, cancellation: UpstreamCancellation())
            .whenSuccess { response in
                lifetimes.observe(stream, status: response.head.status, response.head.headers, now: wallClock())
            }
    }

    /// One background revalidation per key while a stale entry is being served.
    private func revalidate(_ key: CacheKey, _ entry: CachedResponse, kind: RequestClass, loop: any EventLoop) {
        guard revalidations.waiters(for: key) == 0 else { return }
        // Revalidate as the catch-up read the entry holds: only catch-up entries are revalidated
        // (a long-poll must come back with its own fresh cursor).
        let offset = key.variant.split(separator: "&").first { $0.hasPrefix("offset=") }?.dropFirst("offset=".count) ?? "-1"
        let uri = StreamPath.urlPath(forName: key.stream, prefix: configuration.streamPathPrefix) + "?offset=" + offset
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
        if let credentials = key.credentials { head.headers.add(name: "Authorization", value: credentials) }
        if key.variant.hasSuffix("&encoding=gzip") { head.headers.add(name: "Accept-Encoding", value: "gzip") }
        if let etag = entry.etag { head.headers.add(name: "If-None-Match", value: etag) }
        let joined = revalidations.join(key, on: loop) {
            fetch(head, key: key, kind: kind, timeout: configuration.upstreamTimeout, loop: loop)
        }
        joined.future.whenFailure { _ in }  // a failed revalidation leaves the stale entry in place
    }

    /// Fresh, stale or expired, with coherence: a tail answer that ends before a tail the edge has
    /// since seen, or that does not know of a closure the edge has since seen, is out of date.
    private func freshness(of entry: CachedResponse, kind: RequestClass, stream: String, at now: NIODeadline) -> CacheFreshness {
        let freshness = entry.freshness(at: now)
        // A long-poll answer is the answer to its exact offset and cursor, and its bytes never
        // change: newer data does not make it wrong, only no longer the tail, and the reader
        // asks again from its end. Sending a late reader upstream instead would hand it a new
        // random cursor (§ cursor jitter), splitting it off from the others for good: every
        // later long-poll of its would need an upstream request of its own.
        guard kind == .catchUp, entry.freshUntil != nil, freshness != .expired,
            let end = entry.headers.first(name: HeaderName.nextOffset).flatMap(StreamOffset.init),
            let known = tails.known(stream)
        else { return freshness }
        let entryClosed = HeaderName.isTrue(entry.headers.first(name: HeaderName.closed))
        return known.tail > end || (known.closed && !entryClosed) ? .expired : freshness
    }

    // MARK: - Pass-through

    /// Passes a request through. If the client leaves first, the upstream request is abandoned
    /// (a long-poll must not keep an upstream connection for nobody).
    private func forward(
        _ request: ServerRequest, kind: RequestClass, live: LiveRequest?, countsRequest: Bool = true, loop: any EventLoop
    ) -> EventLoopFuture<ServerReply> {
        metrics.upstream(kind)
        let head = upstreamHead(request.head)
        let timeout = kind == .longPoll ? configuration.upstreamLongPollTimeout : configuration.upstreamTimeout
        let started = NIODeadline.now()
        let body = request.body.readableBytes > 0 || request.head.method == .POST || request.head.method == .PUT ? request.body : nil
        let cancellation = UpstreamCancellation()
        live?.onCancel { cancellation.cancel() }
        let client = kind == .longPoll ? liveUpstream : upstream
        return client.execute(head, body: body, timeout: timeout, on: loop, cancellation: cancellation).map { [self] response in
            metrics.upstreamLatency.record(Double((NIODeadline.now() - started).nanoseconds) / 1e9)
            if let stream = Self.streamName(request.head.uri, prefix: configuration.streamPathPrefix) {
                observeTail(stream, response.head.headers)
                if request.head.method == .GET || request.head.method == .HEAD {
                    lifetimes.observe(stream, status: response.head.status, response.head.headers, now: configuration.wallClock())
                }
            }
            return relay(response, outcome: .pass, kind: kind, ifNoneMatch: nil, countsRequest: countsRequest)
        }.recover { [metrics] error in
            metrics.upstreamFailed()
            if countsRequest { metrics.request(kind, .pass) }
            return Self.upstreamFailure(error)
        }
    }

    private func observeTail(_ stream: String, _ headers: HTTPHeaders) {
        if let offset = headers.first(name: HeaderName.nextOffset).flatMap(StreamOffset.init) {
            tails.observe(stream, offset, closed: HeaderName.isTrue(headers.first(name: HeaderName.closed)))
        }
    }

    // MARK: - Responses

    /// An answer from the cache, with `Age`, or a 304 when the client already has it.
    private func serve(
        _ entry: CachedResponse, outcome: CacheOutcome, kind: RequestClass, ifNoneMatch: String?, now: NIODeadline, countsRequest: Bool = true
    ) -> ServerReply {
        if countsRequest { metrics.request(kind, outcome) }
        var headers = entry.headers
        headers.replaceOrAdd(name: "X-Cache", value: outcome.rawValue)
        headers.replaceOrAdd(name: "Age", value: String(max(0, (now - entry.storedAt).nanoseconds / 1_000_000_000)))
        if let ifNoneMatch, let etag = entry.etag, EntityTag.ifNoneMatch(ifNoneMatch, matches: etag) {
            headers.remove(name: "Content-Length")
            return .response(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers), body: [])
        }
        metrics.served(bytes: entry.body.readableBytes, fromCache: true)
        headers.replaceOrAdd(name: "Content-Length", value: String(entry.body.readableBytes))
        return .response(HTTPResponseHead(version: .http1_1, status: entry.status, headers: headers), body: [entry.body])
    }

    /// A live answer fetched with another client's cursor, given a cursor that moves this
    /// client's forward (§10.1).
    static func adoptingCursor(_ response: UpstreamResponse, client: Substring?) -> UpstreamResponse {
        guard let upstream = response.head.headers.first(name: HeaderName.cursor) else { return response }
        let cursor = CursorPolicy.sharedAnswerCursor(upstream: Substring(upstream), client: client)
        guard cursor != upstream else { return response }
        var response = response
        response.head.headers.replaceOrAdd(name: HeaderName.cursor, value: String(cursor))
        return response
    }

    /// An upstream answer passed on to the client.
    private func relay(
        _ response: UpstreamResponse, outcome: CacheOutcome, kind: RequestClass, ifNoneMatch: String?, countsRequest: Bool = true
    ) -> ServerReply {
        if countsRequest { metrics.request(kind, outcome) }
        var headers = Self.endToEnd(response.head.headers)
        headers.replaceOrAdd(name: "X-Cache", value: outcome.rawValue)
        if response.head.status == .ok, let ifNoneMatch, let etag = headers.first(name: "ETag"),
            EntityTag.ifNoneMatch(ifNoneMatch, matches: etag)
        {
            return .response(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers), body: [])
        }
        metrics.served(bytes: response.body.readableBytes, fromCache: false)
        if response.head.status.mayHaveResponseBody && response.head.status != .noContent && response.head.status != .notModified {
            headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        }
        return .response(HTTPResponseHead(version: .http1_1, status: response.head.status, headers: headers), body: [response.body])
    }

    static func upstreamFailure(_ error: any Error) -> ServerReply {
        let (status, reason): (HTTPResponseStatus, String)
        switch (error as? UpstreamError)?.kind {
        case .timedOut?: (status, reason) = (.gatewayTimeout, "upstream timed out")
        case .poolQueueFull?: (status, reason) = (.serviceUnavailable, "edge overloaded: too many requests waiting for the upstream")
        default: (status, reason) = (.badGateway, "upstream unavailable")
        }
        return text(status, reason + "\n", cache: "PASS")
    }

    static func text(_ status: HTTPResponseStatus, _ text: String, cache: String) -> ServerReply {
        let body = ByteBuffer(string: text)
        var headers: HTTPHeaders = [
            "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(body.readableBytes),
            "Cache-Control": "no-store", "X-Cache": cache,
        ]
        headers.add(contentsOf: BrowserHeaders.all)
        return .response(HTTPResponseHead(version: .http1_1, status: status, headers: headers), body: [body])
    }

    static func local(_ contentType: String, _ bytes: [UInt8]) -> ServerReply {
        var headers: HTTPHeaders = [
            "Content-Type": contentType, "Content-Length": String(bytes.count), "Cache-Control": "no-store",
        ]
        headers.add(contentsOf: BrowserHeaders.all)
        return .response(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: [ByteBuffer(bytes: bytes)])
    }

    /// A reply body as one buffer (the edge's replies have at most one part).
    private static func joined(_ parts: [ByteBuffer]) -> ByteBuffer {
        guard parts.count > 1 else { return parts.first ?? ByteBuffer() }
        var whole = ByteBuffer()
        for var part in parts { whole.writeBuffer(&part) }
        return whole
    }

    /// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length",
    ]

    static func endToEnd(_ headers: HTTPHeaders) -> HTTPHeaders {
        var result = HTTPHeaders()
        for (name, value) in headers where !hopByHop.contains(name.lowercased()) && name.lowercased() != "x-cache" && name.lowercased() != "age" {
            result.add(name: name, value: value)
        }
        return result
    }

    /// The request as it goes upstream under this edge's configuration.
    private func upstreamHead(_ head: HTTPRequestHead) -> HTTPRequestHead {
        Self.upstreamHead(head, trustForwardedHost: configuration.trustForwardedHost)
    }

    /// The request as it goes upstream: same method, target and end-to-end headers, plus `Via`
    /// and `X-Forwarded-Host`.
    static func upstreamHead(_ head: HTTPRequestHead, trustForwardedHost: Bool) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !hopByHop.contains(name.lowercased()) {
            headers.add(name: name, value: value)
        }
        // The upstream sees the edge as its client; the name the reader used travels along so
        // that URLs the upstream builds (Location) point at the edge. A client's own value would
        // let it point them anywhere, so only a downstream edge's is kept, and only when this
        // edge is told to trust it (an inner tier).
        if !trustForwardedHost { headers.remove(name: "X-Forwarded-Host") }
        if !headers.contains(name: "X-Forwarded-Host"), let host = head.headers.first(name: "Host") {
            headers.add(name: "X-Forwarded-Host", value: host)
        }
        headers.add(name: "Via", value: "1.1 durable-streams-edge")
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// Whether the client takes gzip (a q-value of 0 refuses it).
    static func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        for value in headers[canonicalForm: "Accept-Encoding"] {
            let parts = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            if parts.first == "gzip" { return !parts.dropFirst().contains { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" } }
        }
        return false
    }

    /// The canonical name of the stream `uri` addresses, or `nil` if it addresses none.
    static func streamName(_ uri: String, prefix: String) -> String? {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        return try? StreamPath.canonicalName(urlPath: path, prefix: prefix)
    }
}

extension CachedResponse {
    /// Until when this entry may stand in for a failing upstream.
    func errorDeadline(_ window: TimeAmount) -> NIODeadline? {
        guard let fresh = freshUntil else { return .distantFuture }  // immutable: always
        return fresh + window
    }
}
