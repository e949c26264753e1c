import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport
import StreamAuth

/// Catch-up and long-poll reads through the cache: fresh entries are served, concurrent misses
/// share one upstream request (a flight), answers are stored before any waiter sees them, and
/// coherence with the tails and closures the edge has seen decides what is still fresh.
extension EdgeService {
    /// `countsRequest: false` for the reads an SSE session makes to catch a client up: they are part of
    /// that one SSE request, not requests of their own, and are not counted as such.
    func read(
        _ stream: String, _ read: StreamOperation.Read, request: ServerRequest, live: LiveRequest, countsRequest: Bool = true,
        loop: any EventLoop
    ) -> ResponderAnswer {
        let kind: RequestClass = read.mode == .catchUp ? .catchUp : .longPoll
        let credentials = request.head.headers.first(name: "Authorization")
        if credentials != nil && configuration.credentials == .bypass {
            return .later(forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop))
        }
        guard let plainKey = CacheKey(stream: stream, start: read.start, mode: read.mode, credentials: credentials) else {
            return .later(forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop))  // offset=now: the tail position must not be cached
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
                return .now(serve(entry, outcome: .hit, kind: kind, stream: stream, ifNoneMatch: read.ifNoneMatch, now: now, countsRequest: countsRequest))
            case .stale where kind == .catchUp:
                if lifetime == .renewalDue { renewTTL(stream, credentials: credentials, loop: loop) }
                revalidate(key, entry, kind: kind, loop: loop)
                return .now(serve(entry, outcome: .stale, kind: kind, stream: stream, ifNoneMatch: read.ifNoneMatch, now: now, countsRequest: countsRequest))
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
            return serve(fallback, outcome: .stale, kind: kind, stream: stream, ifNoneMatch: read.ifNoneMatch, now: configuration.clock(), countsRequest: countsRequest)
        }
        // Answered on the client's loop, where the flight's promise completes (the callback may
        // use this request's loop-bound state), through one promise per waiter rather than a
        // chain of futures: with thousands of waiters per flight, each one counts.
        let answered = loop.makePromise(of: ServerReply.self)
        if kind == .longPoll && countsRequest {
            // A long-poll waiting on a flight is a live reader of the stream until answered.
            metrics.liveReaderStarted(stream, .longPoll)
            answered.futureResult.whenComplete { [metrics] _ in metrics.liveReaderEnded(stream, .longPoll) }
        }
        joined.future.assumeIsolated().whenComplete { [self] result in
            let response: UpstreamResponse
            switch result {
            case .failure(let error):
                if let stale = servedStale() { return answered.succeed(stale) }
                if countsRequest { metrics.request(kind, outcome, stream: stream) }
                return answered.succeed(Self.upstreamFailure(error))
            case .success(let value):
                response = value
            }
            if response.head.status == .notModified {
                // The upstream confirmed the entry this flight validated. It may have been evicted
                // or purged meanwhile; the copy this request holds still answers (never our 304).
                if let entry = cache.get(key) ?? fallback {
                    return answered.succeed(serve(
                        entry, outcome: .revalidated, kind: kind, stream: stream, ifNoneMatch: read.ifNoneMatch, now: configuration.clock(),
                        countsRequest: countsRequest))
                }
                return answered.completeWith(forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop))
            }
            // An upstream that answers 5xx is failing as much as one that does not answer (RFC 5861 §4).
            if response.head.status.code >= 500, let stale = servedStale() {
                return answered.succeed(stale)
            }
            // A private answer is for the request that asked; followers without credentials
            // must not receive it through the flight, so they ask for themselves.
            if !joined.isLeader, key.credentials == nil, response.facts.isPrivate {
                return answered.completeWith(forward(request, kind: kind, live: live, countsRequest: countsRequest, loop: loop))
            }
            let answer = joined.isLeader ? response : Self.adoptingCursor(response, client: read.mode.cursor)
            answered.succeed(relay(answer, outcome: outcome, kind: kind, stream: stream, ifNoneMatch: read.ifNoneMatch, countsRequest: countsRequest))
        }
        return .later(answered.futureResult)
    }

    /// The one upstream request of a flight; its answer is stored before any waiter sees it,
    /// so late arrivals find it in the cache.
    func fetch(_ head: HTTPRequestHead, key: CacheKey, kind: RequestClass, timeout: TimeAmount, loop: any EventLoop)
        -> Collapser<CacheKey, UpstreamResponse>.Call
    {
        metrics.upstream(kind)
        let started = NIODeadline.now()
        let cancellation = UpstreamCancellation()
        let client = kind == .longPoll ? liveUpstream : upstream
        let result = client.execute(head, body: nil, timeout: timeout, on: loop, cancellation: cancellation).map { [self] response -> UpstreamResponse in
            metrics.upstreamAnswered(seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9, bytes: response.body.readableBytes)
            var response = response
            response.headersToServe = Self.headersToServe(response)
            // Served only to requests the edge authorised: private beyond it, marked once here.
            if configuration.credentials == .verify { AuthorizingResponder.privatise(&response.headersToServe!) }
            response.encoded = Self.encodedToServe(response)
            response.adopted = AdoptedAnswers()
            observeTail(key.stream, response.facts)
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

    func store(_ response: UpstreamResponse, under key: CacheKey) {
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
            entry = CachedResponse(status: response.head.status, headers: Self.headersToServe(response), body: response.body,
                                   storedAt: now, freshUntil: nil, staleUntil: nil, etag: response.facts.etag, facts: response.facts)
        case .expiring(let fresh, let stale):
            entry = CachedResponse(status: response.head.status, headers: Self.headersToServe(response), body: response.body,
                                   storedAt: now, freshUntil: now + fresh, staleUntil: now + fresh + stale,
                                   etag: response.facts.etag, facts: response.facts)
        }
        cache.put(key, entry)
    }

    /// The headers an upstream answer is served with, from the cache or relayed: its end-to-end
    /// headers and the body's `Content-Length`. Built once per answer (`fetch`), so a cache hit
    /// or each waiter of a flight only adds `X-Cache` (and `Age`).
    static func headersToServe(_ response: UpstreamResponse) -> HTTPHeaders {
        if let ready = response.headersToServe { return ready }
        var headers = endToEnd(response.head.headers)
        let status = response.head.status
        if status.mayHaveResponseBody && status != .noContent && status != .notModified {
            headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        }
        return headers
    }

    /// An upstream answer as the bytes every waiter of its flight is sent (with `X-Cache` added
    /// per waiter). Only answers passed on whole: a 304 is the edge's own business.
    static func encodedToServe(_ response: UpstreamResponse) -> EncodedResponse? {
        guard response.head.status != .notModified else { return nil }
        return EncodedResponse(
            HTTPResponseHead(version: .http1_1, status: response.head.status, headers: headersToServe(response)), body: response.body)
    }

    /// Fresh, stale or expired, with coherence: a tail answer that ends before a tail the edge has
    /// since seen, or that does not know of a closure the edge has since seen, is out of date.
    func freshness(of entry: CachedResponse, kind: RequestClass, stream: String, at now: NIODeadline) -> CacheFreshness {
        let freshness = entry.freshness(at: now)
        // A long-poll answer is the answer to its exact offset and cursor, and its bytes never
        // change: newer data does not make it wrong, only no longer the tail, and the reader
        // asks again from its end. Sending a late reader upstream instead would hand it a new
        // random cursor (§ cursor jitter), splitting it off from the others for good: every
        // later long-poll of its would need an upstream request of its own.
        guard kind == .catchUp, entry.freshUntil != nil, freshness != .expired,
            let end = entry.facts.nextOffset,
            let known = tails.known(stream)
        else { return freshness }
        return known.tail > end || (known.closed && !entry.facts.closed) ? .expired : freshness
    }
}


extension CachedResponse {
    /// Until when this entry may stand in for a failing upstream.
    func errorDeadline(_ window: TimeAmount) -> NIODeadline? {
        guard let fresh = freshUntil else { return .distantFuture }  // immutable: always
        return fresh + window
    }
}

