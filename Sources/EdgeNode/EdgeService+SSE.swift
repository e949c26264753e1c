import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// `live=sse` at the edge: the first catch-up read decides the answer; `EdgeSSESession` then
/// serves the client from the cache and the stream's shared upstream subscription.
extension EdgeService {
    /// `live=sse`: the first catch-up read decides the answer (a 404 stays a 404); after that the
    /// client is served by an `EdgeSSESession`.
    func sse(_ stream: String, _ read: StreamOperation.Read, request: ServerRequest, live: LiveRequest, loop: any EventLoop)
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
            var responseHead = SSEResponseHead.make(base64: !contentType.isTextual)
            let shared = self.fanout.hasSubscription(SSEFanout.key(stream: stream, credentials: credentials))
            responseHead.headers.add(name: "X-Cache", value: (shared ? CacheOutcome.collapsed : CacheOutcome.miss).rawValue)
            let plan = EdgeSSESession.Plan(
                stream: stream, credentials: credentials, clientCursor: read.mode.cursor.map(String.init), firstHeaders: head.headers,
                firstBody: body, base64: !contentType.isTextual, upstreamHead: subscriptionHead)
            return .sse(responseHead, start: { loop in
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

    func catchUp(stream: String, start: ReadStart, credentials: String?, live: LiveRequest, loop: any EventLoop)
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
        return self.read(stream, read, request: ServerRequest(head: head, body: ByteBuffer()), live: live, countsRequest: false, loop: loop).future(on: loop).map { reply in
            switch reply {
            case .response(let head, let body): return (head, Self.joined(body))
            case .encoded(let response, _): return (response.head, response.body)
            case .fileResponse, .sse: return (HTTPResponseHead(version: .http1_1, status: .internalServerError), ByteBuffer())
            }
        }
    }

    /// The cursor for a live answer the edge renders itself (§10.1).
    func cursor(after clientCursor: String?) -> UInt64 {
        cursors.nextCursor(after: clientCursor.map { Substring($0) }, now: configuration.wallClock())
    }
}
