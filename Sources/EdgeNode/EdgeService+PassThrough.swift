import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// Requests the edge passes to the upstream as they are (writes, HEAD, what it does not
/// cache), and how any request is rewritten on its way upstream.
extension EdgeService {
    /// Passes a request through. If the client leaves first, the upstream request is abandoned
    /// (a long-poll must not keep an upstream connection for nobody).
    func forward(
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
            metrics.upstreamAnswered(seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9, bytes: response.body.readableBytes)
            let stream = Self.streamName(request.head.uri, prefix: configuration.streamPathPrefix)
            if let stream {
                observeTail(stream, response.facts)
                if request.head.method == .GET || request.head.method == .HEAD {
                    lifetimes.observe(stream, status: response.head.status, response.head.headers, now: configuration.wallClock())
                }
            }
            return relay(response, outcome: .pass, kind: kind, stream: stream, ifNoneMatch: nil, countsRequest: countsRequest)
        }.recover { [metrics] error in
            metrics.upstreamFailed()
            if countsRequest { metrics.request(kind, .pass) }
            return Self.upstreamFailure(error)
        }
    }

    func observeTail(_ stream: String, _ facts: ReadFacts) {
        if let offset = facts.nextOffset {
            tails.observe(stream, offset, closed: facts.closed)
        }
    }

    /// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never forwarded.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length",
    ]

    /// Whether `name` is hop-by-hop. Compared in place, without lowercasing a copy: this runs for
    /// every header of every answer relayed to every collapsed waiter.
    static func isHopByHop(_ name: String) -> Bool {
        hopByHop.contains { HeaderName.equalIgnoringCase(name, $0) }
    }

    /// The header names a message's `Connection` header lists (RFC 9110 §7.6.1): hop-by-hop
    /// for that message only, so never forwarded either. Usually none.
    static func connectionOptions(_ headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "Connection"].map(String.init)
    }

    /// The headers an answer is passed on with: no hop-by-hop headers (the fixed ones and those
    /// its `Connection` names), and no `X-Cache` or `Age` from the upstream (the edge sets its own).
    static func endToEnd(_ headers: HTTPHeaders) -> HTTPHeaders {
        let options = connectionOptions(headers)
        var result = HTTPHeaders()
        for (name, value) in headers
        where !isHopByHop(name) && !HeaderName.equalIgnoringCase(name, "x-cache") && !HeaderName.equalIgnoringCase(name, "age")
            && !options.contains(where: { HeaderName.equalIgnoringCase(name, $0) })
        {
            result.add(name: name, value: value)
        }
        return result
    }

    /// The request as it goes upstream under this edge's configuration.
    func upstreamHead(_ head: HTTPRequestHead) -> HTTPRequestHead {
        Self.upstreamHead(head, trustForwardedHost: configuration.trustForwardedHost, scheme: clientScheme)
    }

    /// The scheme clients reach this edge by: every connection to a TLS listener is TLS.
    var clientScheme: String { configuration.tls == nil ? "http" : "https" }

    /// The request as it goes upstream: same method, target and end-to-end headers (no
    /// hop-by-hop ones, fixed or named by `Connection`), plus `Via`, `X-Forwarded-Host` and
    /// `X-Forwarded-Proto` (`scheme`: how the client reached this edge).
    static func upstreamHead(_ head: HTTPRequestHead, trustForwardedHost: Bool, scheme: String) -> HTTPRequestHead {
        let options = connectionOptions(head.headers)
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !isHopByHop(name) && !options.contains(where: { HeaderName.equalIgnoringCase(name, $0) }) {
            headers.add(name: name, value: value)
        }
        // The upstream sees the edge as its client; the name and scheme the reader used travel
        // along so that URLs the upstream builds (`Location`, a subscription's `callback_url`)
        // point at the edge. A client's own values would let it point them anywhere, so only a
        // downstream edge's are kept, and only when this edge is told to trust them (an inner tier).
        if !trustForwardedHost {
            headers.remove(name: "X-Forwarded-Host")
            headers.remove(name: "X-Forwarded-Proto")
        }
        if !headers.contains(name: "X-Forwarded-Host"), let host = head.headers.first(name: "Host") {
            headers.add(name: "X-Forwarded-Host", value: host)
        }
        if !headers.contains(name: "X-Forwarded-Proto") { headers.add(name: "X-Forwarded-Proto", value: scheme) }
        headers.add(name: "Via", value: "1.1 durable-streams-edge")
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The canonical name of the stream `uri` addresses, or `nil` if it addresses none.
    static func streamName(_ uri: String, prefix: String) -> String? {
        let path = RequestTarget(uri).path
        return try? StreamPath.canonicalName(urlPath: path, prefix: prefix)
    }
}
