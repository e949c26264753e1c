import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// The answers the edge writes: from its cache (with `Age` and its own 304s), relayed from the
/// upstream, its own errors, and its local pages.
extension EdgeService {
    /// An answer from the cache, with `Age`, or a 304 when the client already has it.
    func serve(
        _ entry: CachedResponse, outcome: CacheOutcome, kind: RequestClass, stream: String? = nil, ifNoneMatch: String?, now: NIODeadline,
        countsRequest: Bool = true
    ) -> ServerReply {
        let age = String(max(0, (now - entry.storedAt).nanoseconds / 1_000_000_000))
        if let ifNoneMatch, let etag = entry.etag, EntityTag.ifNoneMatch(ifNoneMatch, matches: etag) {
            if countsRequest { metrics.request(kind, outcome, stream: stream, fromCache: true) }
            var headers = entry.headers
            headers.add(name: "X-Cache", value: outcome.rawValue)
            headers.add(name: "Age", value: age)
            headers.remove(name: "Content-Length")
            return .response(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers), body: [])
        }
        if countsRequest {
            metrics.request(kind, outcome, stream: stream, bytes: entry.body.readableBytes, fromCache: true)
        } else {
            metrics.sent(bytes: entry.body.readableBytes, fromCache: true, stream: stream)
        }
        // The entry's head is bytes already (`CachedResponse.encoded`) and holds neither
        // `X-Cache` nor `Age` (`endToEnd` drops the upstream's): two lines are all a hit adds.
        var extra = ExtraHeaderLines()
        extra.add(name: "X-Cache", value: outcome.rawValue)
        extra.add(name: "Age", value: age)
        return .encoded(entry.encoded, extra: extra)
    }

    /// A live answer fetched with another client's cursor, given a cursor that moves this
    /// client's forward (§10.1).
    static func adoptingCursor(_ response: UpstreamResponse, client: Substring?) -> UpstreamResponse {
        guard let upstream = response.facts.cursor else { return response }
        let cursor = CursorPolicy.sharedAnswerCursor(upstream: Substring(upstream), client: client)
        guard cursor != upstream else { return response }
        let make = { () -> UpstreamResponse in
            var adopted = response
            adopted.replaceCursor(with: String(cursor))
            if response.encoded != nil { adopted.encoded = encodedToServe(adopted) }
            return adopted
        }
        // Serialized once per distinct cursor for the whole flight.
        return response.adopted?.answer(with: String(cursor), make: make) ?? make()
    }

    /// An upstream answer passed on to the client.
    func relay(
        _ response: UpstreamResponse, outcome: CacheOutcome, kind: RequestClass, stream: String? = nil, ifNoneMatch: String?,
        countsRequest: Bool = true
    ) -> ServerReply {
        if response.head.status == .ok, let ifNoneMatch, let etag = response.facts.etag,
            EntityTag.ifNoneMatch(ifNoneMatch, matches: etag)
        {
            if countsRequest { metrics.request(kind, outcome, stream: stream) }
            var headers = Self.headersToServe(response)
            headers.add(name: "X-Cache", value: outcome.rawValue)
            headers.remove(name: "Content-Length")
            return .response(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers), body: [])
        }
        if countsRequest {
            metrics.request(kind, outcome, stream: stream, bytes: response.body.readableBytes)
        } else {
            metrics.sent(bytes: response.body.readableBytes, fromCache: false, stream: stream)
        }
        // Encoded once for a whole flight (`fetch`): each waiter adds its `X-Cache` line only.
        let encoded = response.encoded ?? EncodedResponse(
            HTTPResponseHead(version: .http1_1, status: response.head.status, headers: Self.headersToServe(response)), body: response.body)
        var extra = ExtraHeaderLines()
        extra.add(name: "X-Cache", value: outcome.rawValue)
        return .encoded(encoded, extra: extra)
    }

    static func upstreamFailure(_ error: any Error) -> ServerReply {
        let (status, reason): (HTTPResponseStatus, String)
        switch (error as? UpstreamError)?.kind {
        case .timedOut?: (status, reason) = (.gatewayTimeout, "upstream timed out")
        case .poolQueueFull?: (status, reason) = (.serviceUnavailable, "edge overloaded: too many requests waiting for the upstream")
        case .responseTooLarge?: (status, reason) = (.badGateway, "upstream answer too large")
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
    static func joined(_ parts: [ByteBuffer]) -> ByteBuffer {
        guard parts.count > 1 else { return parts.first ?? ByteBuffer() }
        var whole = ByteBuffer()
        for var part in parts { whole.writeBuffer(&part) }
        return whole
    }

    /// Whether the client takes gzip (a q-value of 0 refuses it).
    static func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        for value in headers[canonicalForm: "Accept-Encoding"] {
            let parts = value.split(separator: ";").map { String($0.trimmingASCII(" \t")) }
            guard let coding = parts.first, HeaderName.equalIgnoringCase(coding, "gzip") else { continue }
            return !parts.dropFirst().contains { ["q=0", "q=0.0", "q=0.00", "q=0.000"].contains($0.lowercased()) }
        }
        return false
    }
}
