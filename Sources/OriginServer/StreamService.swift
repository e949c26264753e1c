import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import StreamStore
import Subscriptions

/// Turns requests into replies: routing, the protocol's rules for each operation, and the
/// response headers they require. Stateless apart from the store; runs on the calling
/// connection's event loop and never blocks it.
final class StreamService: HTTPResponder {
    let configuration: OriginConfiguration
    let store: any StreamStore
    let metrics: OriginMetrics
    let cursors: CursorPolicy
    /// Seconds since 1970 (cursor intervals and cache lifetimes).
    let clock: @Sendable () -> Double
    /// Catch-up answers for ranges that no longer change, kept as bytes while asked for.
    let answers = ReadAnswerCache()
    /// Client connections open now (`/__origin/stats`).
    let connections: @Sendable () -> Int
    /// Subscriptions (§6–7), told of every create, append and delete; `nil` when turned off.
    let subscriptions: SubscriptionRegistry?

    /// The origin's own pages: the live dashboard and the JSON it polls.
    static let dashboardPath = "/__origin/"
    static let statsPath = "/__origin/stats"

    init(configuration: OriginConfiguration, store: any StreamStore, metrics: OriginMetrics,
         clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
         connections: @escaping @Sendable () -> Int = { 0 }, subscriptions: SubscriptionRegistry? = nil) {
        self.configuration = configuration
        self.subscriptions = subscriptions
        self.store = store
        self.metrics = metrics
        self.cursors = CursorPolicy(intervalSeconds: configuration.cursorIntervalSeconds)
        self.clock = clock
        self.connections = connections
    }

    /// A reply and what it added to its stream, for the metrics.
    struct Answer {
        var reply: ServerReply
        /// 1 for an append that added data.
        var appends = 0
        /// Bytes added: an append's body, or a new stream's initial body.
        var appendedBytes = 0
    }

    var maxBodyBytes: Int { configuration.maxBodyBytes }

    func connectionOpened() { metrics.openConnections.increment() }
    func connectionClosed() { metrics.openConnections.decrement() }

    func refusal(_ error: ProtocolError) -> ServerReply { Self.errorReply(error) }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        .later(reply(to: request, live: live, on: loop))
    }

    /// Answers one request. The future always succeeds: failures become error responses.
    func reply(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let target = RequestTarget(request.head.uri)
        let path = target.path
        let query = target.query
        let method = request.head.method.rawValue

        let operation: OriginOperation
        var stream: String?
        let answer: EventLoopFuture<Answer>
        if path.utf8.starts(with: configuration.streamPathPrefix.utf8) {  // by byte, as `StreamPath` reads it
            if method == "OPTIONS" {
                operation = .options
                answer = loop.makeSucceededFuture(Answer(reply: Self.preflight()))
            } else {
                do throws(ProtocolError) {
                    // The same function edges key their caches by: both must agree on which stream a path names.
                    let streamPath = try StreamPath.canonicalName(urlPath: path, prefix: configuration.streamPathPrefix)
                    // Routed before any stream operation: `__ds` is never a stream (§6).
                    if SubscriptionPaths.isReserved(streamPath) {
                        guard let subscriptions else {
                            throw ProtocolError(.notFound, "__ds is reserved for control APIs, and subscriptions are turned off")
                        }
                        operation = .other
                        let routes = SubscriptionRoutes(registry: subscriptions)
                        answer = routes.respond(method: method, name: streamPath, request: request, baseURL: streamRootURL(for: request.head), loop: loop)
                            .map { Answer(reply: $0) }
                        return finish(answer, operation: operation, stream: nil, request: request)
                    }
                    let decoded = try StreamOperation.decode(
                        method: method, query: query, header: { request.head.headers.first(name: $0) },
                        bodyLength: request.body.readableBytes)
                    operation = Self.operation(of: decoded)
                    stream = streamPath
                    answer = perform(decoded, on: streamPath, request: request, live: live, loop: loop)
                } catch {
                    operation = .invalid
                    answer = loop.makeSucceededFuture(Answer(reply: Self.errorReply(error)))
                }
            }
        } else if path == "/metrics" && method == "GET" {
            operation = .metrics
            let text = metrics.render(streamCount: store.streamCount, storage: store.statistics, subscriptions: subscriptions?.statistics)
            answer = loop.makeSucceededFuture(Answer(reply: Self.local("text/plain; version=0.0.4", text)))
        } else if path == Self.statsPath && method == "GET" {
            operation = .metrics
            answer = stats(query: query, loop: loop).map { Answer(reply: $0) }
        } else if path == Self.dashboardPath && method == "GET" {
            operation = .metrics
            answer = loop.makeSucceededFuture(Answer(reply: Self.local("text/html; charset=utf-8", OriginDashboard.page)))
        } else if path == "/healthz" {
            operation = .other
            answer = loop.makeSucceededFuture(Answer(reply: Self.text(.ok, "ok\n")))
        } else {
            operation = .other
            answer = loop.makeSucceededFuture(Answer(reply: Self.errorReply(ProtocolError(
                .notFound, "no route: streams live under \(configuration.streamPathPrefix)<name>"))))
        }
        return finish(answer, operation: operation, stream: stream, request: request)
    }

    /// Counts the answer in the metrics once it is known.
    private func finish(_ answer: EventLoopFuture<Answer>, operation: OriginOperation, stream: String?, request: ServerRequest)
        -> EventLoopFuture<ServerReply>
    {
        let (metrics, requestBytes) = (self.metrics, request.body.readableBytes)
        return answer.map { [stream] answer in
            metrics.request(
                operation, status: answer.reply.status.code, stream: stream, requestBytes: requestBytes,
                responseBytes: answer.reply.bodyBytes, appends: answer.appends, appendedBytes: answer.appendedBytes)
            return answer.reply
        }
    }

    private static func operation(of operation: StreamOperation) -> OriginOperation {
        switch operation {
        case .create: return .create
        case .append(let append): return append.contentType == nil ? .close : .append
        case .read(let read):
            switch read.mode {
            case .catchUp: return .read
            case .longPoll: return .longPoll
            case .sse: return .sse
            }
        case .head: return .head
        case .delete: return .delete
        }
    }

    /// A 200 the origin makes about itself (metrics, stats, the dashboard): never cached.
    static func local(_ contentType: String, _ bytes: [UInt8]) -> ServerReply {
        let head = ResponseHeaders.head(.ok, [
            ("Content-Type", contentType), ("Content-Length", String(bytes.count)), ("Cache-Control", ResponseHeaders.noStore),
        ])
        return .response(head, body: [ByteBuffer(bytes: bytes)])
    }

    /// `/__origin/stats`: the metrics' figures, with each listed stream's size from the store
    /// (its tail offset, kept in memory by every store: no I/O), never touching a stream.
    private func stats(query: Substring, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let snapshot = metrics.snapshot(history: HistoryRequest(query: query))
        let sizes = snapshot.top.map { entry in
            store.info(entry.key, on: loop).map { Optional($0.tail.position) }.recover { _ in nil }
        }
        let (streams, openConnections, now) = (store.streamCount, connections(), Int64(clock()))
        return EventLoopFuture.whenAllSucceed(sizes, on: loop).map { sizes in
            Self.local("application/json", OriginMetrics.json(snapshot, sizes: sizes, openConnections: openConnections, streams: streams, now: now))
        }
    }

    private func perform(_ operation: StreamOperation, on path: String, request: ServerRequest, live: LiveRequest, loop: any EventLoop)
        -> EventLoopFuture<Answer>
    {
        let future: EventLoopFuture<Answer>
        switch operation {
        case .create(let create):
            future = self.create(path, create, request: request, loop: loop)
        case .append(let append):
            future = self.append(path, append, body: request.body, loop: loop)
        case .read(let read):
            let reply: EventLoopFuture<ServerReply>
            switch read.mode {
            case .catchUp: reply = catchUp(path, read, request: request.head, sentAsStored: !mayCompress(request.head), loop: loop)
            case .longPoll: reply = longPoll(path, read, live: live, loop: loop)
            case .sse: reply = sse(path, read, loop: loop)
            }
            future = reply.map { Answer(reply: $0) }
        case .head:
            future = store.info(path, on: loop).map { info in
                var extra: [(String, String)] = [
                    ("Content-Type", info.contentType.headerValue), (HeaderName.nextOffset, info.tail.description),
                    ("Cache-Control", ResponseHeaders.noStore), ("Content-Length", "0"),
                ]
                extra += info.lifetime.headers
                if info.closed { extra.append((HeaderName.closed, "true")) }
                return Answer(reply: .response(ResponseHeaders.head(.ok, extra), body: []))
            }
        case .delete:
            future = store.delete(path, on: loop).map { [configuration, subscriptions] in
                subscriptions?.streamDeleted(path)
                configuration.onStreamDeleted?(path)
                return Answer(reply: Self.empty(.noContent))
            }
        }
        return future.recover { error in
            guard let error = error as? ProtocolError else {
                return Answer(reply: Self.errorReply(ProtocolError(.internalServerError, "internal error")))
            }
            return Answer(reply: Self.errorReply(error))
        }
    }

    // MARK: - Writes

    private func create(_ path: String, _ create: StreamOperation.Create, request: ServerRequest, loop: any EventLoop)
        -> EventLoopFuture<Answer>
    {
        var fork: ForkCommand?
        if let asked = create.fork {
            // The source is named by its URL path; one outside the stream routes names no stream.
            guard let source = try? StreamPath.canonicalName(urlPath: Substring(asked.source), prefix: configuration.streamPathPrefix)
            else {
                return loop.makeSucceededFuture(Answer(reply: Self.errorReply(ForkErrors.sourceNotFound)))
            }
            fork = ForkCommand(source: source, offset: asked.offset, subOffset: asked.subOffset)
        }
        guard let fork, create.contentType == nil, request.body.readableBytes > 0 else {
            let type = create.contentType ?? (fork == nil ? .octetStream : nil)
            return makeStream(path, create, type: type, fork: fork, request: request, loop: loop)
        }
        // A fork that takes its source's type with a body to append: the body is framed for
        // that type (JSON or bytes), so the type is looked up first. The store checks it again.
        return store.info(fork.source, on: loop).flatMap { info in
            self.makeStream(path, create, type: info.contentType, fork: fork, request: request, loop: loop)
        }.flatMapErrorThrowing { error in
            guard let error = error as? ProtocolError else { throw error }
            switch error.status {
            case .notFound: return Answer(reply: Self.errorReply(ForkErrors.sourceNotFound))
            case .gone: return Answer(reply: Self.errorReply(ForkErrors.sourceGone))
            default: return Answer(reply: Self.errorReply(error))
            }
        }
    }

    private func makeStream(
        _ path: String, _ create: StreamOperation.Create, type: ContentType?, fork: ForkCommand?, request: ServerRequest,
        loop: any EventLoop
    ) -> EventLoopFuture<Answer> {
        let body = Body.framing(request.body, as: type, allowEmptyArray: true)
        let command = CreateCommand(contentType: type, lifetime: create.lifetime, closed: create.closed, body: body, fork: fork)
        let location = absoluteURL(for: request.head)
        return store.create(path, command, on: loop).flatMap { result in
            // Subscriptions hear of the stream before the client does (§6.2: a pattern links a
            // new stream before its first data), and a wake event is written before the answer.
            guard result.created, let subscriptions = self.subscriptions, !subscriptions.isEmpty else { return loop.makeSucceededFuture(result) }
            let linkAt = fork == nil ? StreamOffset.zero : result.info.tail
            return subscriptions.streamCreated(path, linkAt: linkAt, tail: result.info.tail, on: loop).map { result }
        }.map { [configuration] result in
            var extra: [(String, String)] = [
                ("Content-Type", result.info.contentType.headerValue), (HeaderName.nextOffset, result.info.tail.description),
                ("Content-Length", "0"),
            ]
            extra += result.info.lifetime.headers
            if result.info.closed { extra.append((HeaderName.closed, "true")) }
            if result.created {
                extra.append(("Location", location))
                configuration.onStreamCreated?(path)
            }
            return Answer(
                reply: .response(ResponseHeaders.head(result.created ? .created : .ok, extra), body: []),
                appendedBytes: result.created ? request.body.readableBytes : 0)
        }
    }

    /// `Location` must be absolute: the public scheme and host, then the path as requested.
    private func absoluteURL(for head: HTTPRequestHead) -> String {
        let path = RequestTarget(head.uri).path
        return publicOrigin(for: head) + path
    }

    /// `scheme://host` as clients reach this server: `public_url` when configured, else what the
    /// request says: `X-Forwarded-Proto` and `X-Forwarded-Host` (set by our edge; an edge
    /// replaces any a client sends) or `Host`, and this server's own scheme.
    func publicOrigin(for head: HTTPRequestHead) -> String {
        if let configured = configuration.publicURL {
            return configured.hasSuffix("/") ? String(configured.dropLast()) : configured
        }
        let host = head.headers.first(name: "X-Forwarded-Host") ?? head.headers.first(name: "Host")
            ?? "\(configuration.host):\(configuration.port)"
        let forwarded = head.headers.first(name: "X-Forwarded-Proto")?.lowercased()
        let scheme = forwarded == "https" || forwarded == "http" ? forwarded! : (configuration.tls == nil ? "http" : "https")
        return "\(scheme)://\(host)"
    }

    /// The stream root's public URL (`http://host/v1/stream/`), for the URLs subscriptions hand out.
    func streamRootURL(for head: HTTPRequestHead) -> String {
        publicOrigin(for: head) + configuration.streamPathPrefix
    }

    private func append(_ path: String, _ append: StreamOperation.Append, body: ByteBuffer, loop: any EventLoop)
        -> EventLoopFuture<Answer>
    {
        let command = AppendCommand(
            contentType: append.contentType, seq: append.seq, closed: append.closed, producer: append.producer,
            body: Body.framing(body, as: append.contentType, allowEmptyArray: false))
        return store.append(path, command, on: loop).flatMap { result in
            // A wake event an append causes is written before the append is answered, so a
            // worker that sees the answer can already read it.
            guard !result.duplicate, body.readableBytes > 0, let subscriptions = self.subscriptions, !subscriptions.isEmpty else {
                return loop.makeSucceededFuture(result)
            }
            return subscriptions.streamAppended(path, tail: result.tail, on: loop).map { result }
        }.map { result in
            var extra: [(String, String)] = [(HeaderName.nextOffset, result.tail.description)]
            if result.closed { extra.append((HeaderName.closed, "true")) }
            if let producer = result.producer {
                extra.append((HeaderName.producerEpoch, String(producer.epoch)))
                extra.append((HeaderName.producerSeq, String(producer.lastSeq)))
            }
            let added = !result.duplicate && body.readableBytes > 0
            // A producer's first delivery of data is 200, a retry 204; plain appends and every
            // close-only request (no body) are 204 (§5.2.1, §5.3).
            let status: HTTPResponseStatus = append.producer != nil && !result.duplicate && body.readableBytes > 0 ? .ok : .noContent
            if status == .ok { extra.append(("Content-Length", "0")) }
            return Answer(
                reply: .response(ResponseHeaders.head(status, extra), body: []), appends: added ? 1 : 0,
                appendedBytes: added ? body.readableBytes : 0)
        }
    }

    // MARK: - Reads

    /// `sentAsStored`: the body will leave unchanged (no compression), so a store may hand out
    /// file ranges for `sendfile` instead of copying the bytes into memory.
    private func catchUp(
        _ path: String, _ read: StreamOperation.Read, request: HTTPRequestHead, sentAsStored: Bool, loop: any EventLoop
    ) -> EventLoopFuture<ServerReply> {
        // File ranges (`sendfile`) cannot pass through TLS, which must encrypt the bytes itself.
        let future = sentAsStored && configuration.tls == nil
            ? store.readForSending(path, from: read.start, maxBytes: configuration.maxChunkBytes, touch: true, on: loop)
            : store.read(path, from: read.start, maxBytes: configuration.maxChunkBytes, touch: true, on: loop)
        return future.map { result in
            if let subscriptions = self.subscriptions, subscriptions.isWakeStream(path) {
                // The server appends to a wake stream behind any cache's back (as a side effect
                // of appends to other streams): a kept answer at its tail would hide new wakes.
                return self.readReply(result, read: read, cursor: nil, noStore: true)
            }
            // A compressed answer depends on the request; one sent as stored only on the range.
            if sentAsStored, let key = Self.reusableKey(result, read: read, maxBytes: self.answers.maxAnswerBytes) {
                return self.reusedReply(result, read: read, key: key, request: request)
            }
            return self.readReply(result, read: read, cursor: nil)
        }
    }

    /// The key under which a catch-up answer may be kept (`ReadAnswerCache`): the read's range
    /// and state, which fix every byte of the answer for a stream whose headers do not change
    /// with the clock (no TTL or expiry), read from memory, without a condition to evaluate. The
    /// store is read each time: a tail that moved or a closure gives another key.
    static func reusableKey(_ result: ReadResult, read: StreamOperation.Read, maxBytes: Int) -> ReadAnswerCache.Key? {
        guard read.start != .now, read.ifNoneMatch == nil, result.files == nil, !result.isEmpty,
            // Stored bytes of the range (a JSON answer adds its brackets): checked before any
            // copy is made of an answer too big to keep.
            result.end.position <= result.start.position + UInt64(max(0, maxBytes)),
            result.info.expiresAt == nil, result.info.lifetime.headers.isEmpty
        else { return nil }
        return ReadAnswerCache.Key(
            id: result.info.id, start: result.start, end: result.end, upToDate: result.upToDate, closed: result.reachedClosedEnd)
    }

    /// The kept answer for `key`, or a new one made, kept and returned: as `readReply` makes it,
    /// with what compression would add to it (`Vary`) for a request that accepts no coding.
    private func reusedReply(_ result: ReadResult, read: StreamOperation.Read, key: ReadAnswerCache.Key, request: HTTPRequestHead)
        -> ServerReply
    {
        if let kept = answers.get(key) { return .encoded(kept, extra: ExtraHeaderLines()) }
        var reply = readReply(result, read: read, cursor: nil)
        if configuration.compression {
            reply = ResponseCompression(thresholdBytes: configuration.compressionThresholdBytes).reply(reply, to: request)
        }
        guard case .response(let head, let body) = reply, head.status == .ok, head.headers.first(name: "Content-Encoding") == nil else {
            return reply
        }
        var joined = ByteBuffer()
        joined.reserveCapacity(body.reduce(0) { $0 + $1.readableBytes })
        for part in body { joined.writeImmutableBuffer(part) }
        let encoded = EncodedResponse(head, body: joined)
        answers.put(key, encoded)
        return .encoded(encoded, extra: ExtraHeaderLines())
    }

    /// Whether `ResponseCompression` might compress this request's answer. Conservative: only
    /// a request that accepts no encoding at all (no `Accept-Encoding`, or `identity`) is sure to
    /// get its body as stored; file replies are never compressed, so the others read into memory.
    private func mayCompress(_ head: HTTPRequestHead) -> Bool {
        guard configuration.compression else { return false }
        let accepted = head.headers[canonicalForm: "Accept-Encoding"]
        return !accepted.allSatisfy { HeaderName.equalIgnoringCase(String($0.trimmingASCII(" \t")), "identity") }
    }

    /// A 200 for a read (catch-up, or a long-poll that found data), or a 304 when the client's
    /// `If-None-Match` names the same bytes and closure state.
    func readReply(_ result: ReadResult, read: StreamOperation.Read, cursor: UInt64?, noStore: Bool = false) -> ServerReply {
        let isNow = read.start == .now && read.mode == .catchUp
        var extra: [(String, String)] = [
            ("Content-Type", result.info.contentType.headerValue), (HeaderName.nextOffset, result.end.description),
        ]
        if result.upToDate { extra.append((HeaderName.upToDate, "true")) }
        if result.reachedClosedEnd { extra.append((HeaderName.closed, "true")) }
        if let cursor, !result.reachedClosedEnd { extra.append((HeaderName.cursor, String(cursor))) }
        // The stream's lifetime, as HEAD gives it: a cache in front must not serve this read
        // after the stream has expired, and for a sliding TTL it learns when to renew it.
        extra += result.info.lifetime.headers
        extra.append(("Cache-Control", isNow || noStore ? ResponseHeaders.noStore : cacheControl(for: result.info)))
        if !isNow {
            let etag = EntityTag.make(streamID: result.info.id, start: result.start, end: result.end, closed: result.reachedClosedEnd)
            extra.append(("ETag", etag))
            if let ifNoneMatch = read.ifNoneMatch, EntityTag.ifNoneMatch(ifNoneMatch, matches: etag) {
                return .response(ResponseHeaders.head(.notModified, extra), body: [])
            }
        }
        if let files = result.files {
            let body = result.wireBody
            extra.append(("Content-Length", String(body.reduce(0) { $0 + $1.readableBytes })))
            return .fileResponse(ResponseHeaders.head(.ok, extra), body: body, written: { files.close() })
        }
        let body = result.body
        extra.append(("Content-Length", String(body.reduce(0) { $0 + $1.readableBytes })))
        return .response(ResponseHeaders.head(.ok, extra), body: body)
    }

    /// Shared caches may keep a read a minute, never past the stream's expiry.
    private func cacheControl(for info: StreamInfo) -> String {
        guard let expiry = info.expiresAt else { return ResponseHeaders.cacheable }
        // Compared as a Double first: a client may set a TTL or expiry far beyond what an Int
        // holds, and converting that would trap.
        let remaining = expiry - clock()
        guard remaining < 60 else { return ResponseHeaders.cacheable }
        return "public, max-age=\(remaining > 0 ? Int(remaining) : 0)"
    }

    private func sse(_ path: String, _ read: StreamOperation.Read, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        // Read the metadata first so a missing stream is a plain 404, not an empty event stream.
        store.info(path, on: loop).map { info in
            let base64 = !info.contentType.isTextual
            let clientCursor = read.mode.cursor.map(String.init)
            return .sse(SSEResponseHead.make(base64: base64), start: { loop in
                OriginSSESession(service: self, path: path, start: read.start, clientCursor: clientCursor, base64: base64, loop: loop)
            })
        }
    }

    /// The cursor for a live response (§10.1).
    func cursor(after clientCursor: Substring?) -> UInt64 {
        cursors.nextCursor(after: clientCursor, now: clock())
    }

    // MARK: - Plain responses

    static func preflight() -> ServerReply {
        .response(ResponseHeaders.head(.noContent, [
            ("Access-Control-Allow-Methods", StreamOperation.allowedMethods),
            ("Access-Control-Allow-Headers", HeaderName.acceptedFromBrowsers.joined(separator: ", ")),
            ("Access-Control-Max-Age", "86400"),
        ]), body: [])
    }

    static func empty(_ status: HTTPResponseStatus) -> ServerReply {
        .response(ResponseHeaders.head(status), body: [])
    }

    static func text(_ status: HTTPResponseStatus, _ text: String, _ extra: [(String, String)] = []) -> ServerReply {
        let body = ByteBuffer(string: text)
        let head = ResponseHeaders.head(status, extra + [
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(body.readableBytes)),
            ("Cache-Control", ResponseHeaders.noStore),
        ])
        return .response(head, body: [body])
    }

    /// A rejection: its status, its protocol headers, and the reason as a one-line body.
    static func errorReply(_ error: ProtocolError) -> ServerReply {
        text(HTTPResponseStatus(statusCode: error.status.rawValue), error.reason + "\n", error.headers)
    }
}
