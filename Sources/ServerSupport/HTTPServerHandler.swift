import DurableStreams
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The one connection handler of both servers: collects requests with `HTTPConnection`, hands
/// each complete one to the server's `HTTPResponder`, and writes the replies, including
/// streaming SSE ones. Keep-alive, HEAD, pipelining, back-pressure and shutdown live here.
///
/// On an HTTP/1.1 connection it writes responses as bytes (`IOData`: see `ResponseHeadEncoder`).
/// On an HTTP/2 stream (`framing: .http2`) it writes `HTTPServerResponsePart`s for NIO's
/// HTTP/2-to-HTTP/1 codec, which frames them; the stream ends with its response.
public final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler, QuiescingHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = IOData

    /// How responses leave this handler.
    public enum Framing: Sendable {
        /// As HTTP/1.1 bytes, to the socket (or TLS).
        case http1
        /// As typed parts, to `HTTP2FramePayloadToHTTP1ServerCodec` on one HTTP/2 stream;
        /// what has left is counted in `SentBytes` (for the stream's guard).
        case http2(SentBytes)
    }

    private let responder: any HTTPResponder
    /// Set on an HTTP/2 stream: what its responses have sent so far.
    private let sent: SentBytes?
    private var isHTTP2: Bool { sent != nil }
    private var connection: HTTPConnection
    private var context: ChannelHandlerContext?
    private var live: LiveRequest?
    private var session: (any SSESession)?
    /// SSE bytes written but not yet taken by the socket.
    private var sseBacklog = 0
    /// The SSE response is chunked (not for an HTTP/1.0 client).
    private var sseChunked = true
    /// A send left a backlog: the session hears when it is gone.
    private var sessionAwaitsDrain = false
    /// Inside `send`: writes the socket takes at once complete there, and the session, which
    /// learns the backlog from what `send` returns, must not be re-entered.
    private var sending = false

    /// A complete request held back while earlier responses still wait for a client that is
    /// not reading: it is handled once they drain (see `channelWritabilityChanged`).
    private var parked: ServerRequest?
    /// A response that ends the connection has been written.
    private var closing = false
    /// The current request's end has arrived (on an HTTP/2 stream: the client's side is closed).
    private var requestEnded = false

    public init(responder: any HTTPResponder, bodyBudget: RequestBodyBudget? = nil, framing: Framing = .http1) {
        self.responder = responder
        if case .http2(let sent) = framing { self.sent = sent } else { self.sent = nil }
        self.connection = HTTPConnection(maxBodyBytes: responder.maxBodyBytes, bodyBudget: bodyBudget)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        responder.connectionOpened()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        responder.connectionClosed()
        connection.releaseBody()
        parked = nil
        releaseRequest()
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A response that closes the connection was written: requests pipelined behind it are
        // not acted on (an append among them would be applied and never acknowledged).
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        switch part {
        case .head: requestEnded = false
        case .end: requestEnded = true
        case .body: break
        }
        switch connection.read(part) {
        case .none:
            break
        case .process(let head, let body):
            // A client that pipelines requests but does not read the answers would otherwise
            // have every answer queued in memory: the next one waits until the socket drains.
            guard context.channel.isWritable else {
                parked = ServerRequest(head: head, body: body)
                return
            }
            handle(ServerRequest(head: head, body: body), context: context)
        case .rejectAndClose(let error):
            write(responder.refusal(error))
        }
    }

    /// A request the decoder could not make sense of gets a 400 in its turn (the pipelining
    /// handler in front holds the failure back until earlier responses are written); the
    /// connection closes after it, as the decoder cannot go on.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !closing else { return }
        connection.refuse()
        write(responder.refusal(ProtocolError(.badRequest, "malformed HTTP request")))
    }

    private func handle(_ request: ServerRequest, context: ChannelHandlerContext) {
        connection.releaseBody()
        let live = LiveRequest()
        self.live = live
        if connection.quiescing { live.cancel() }
        switch responder.respond(to: request, live: live, on: context.eventLoop) {
        case .now(let reply):
            answer(reply, live: live)
        case .later(let future):
            future.assumeIsolated().whenSuccess { [self] reply in answer(reply, live: live) }
        }
    }

    private func answer(_ reply: ServerReply, live: LiveRequest) {
        // A client that left is not answered; one cancelled by shutdown still is.
        guard context != nil, !live.isCancelled || connection.quiescing else {
            Self.discard(reply)
            return
        }
        self.live = nil
        write(reply)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        releaseRequest()
        context.fireChannelInactive()
    }

    /// An HTTP/2 connection that winds down (GOAWAY) tells each of its streams with this event.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiesce()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let request = parked {
            parked = nil
            handle(request, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The connection this stream belongs to is already winding down: the request about to
    /// arrive is answered as shutdown answers (a long-poll at once with 204, an SSE response
    /// ended after its catch-up), without closing the stream before it.
    public func startQuiescing() {
        connection.quiescing = true
    }

    /// The server is shutting down: end what is in flight promptly, then close.
    public func quiesce() {
        connection.quiescing = true
        live?.cancel()
        session?.stop()
        if connection.isIdle { context?.close(promise: nil) }
    }

    private func releaseRequest() {
        live?.cancel()
        live = nil
        session?.cancel()
        session = nil
    }

    /// A reply that will not be written still releases what it holds (file ranges).
    private static func discard(_ reply: ServerReply) {
        if case .fileResponse(_, _, let written) = reply { written() }
    }

    private func write(_ reply: ServerReply) {
        guard let context else { return Self.discard(reply) }
        if isHTTP2 { return writeParts(reply, context: context) }
        switch reply {
        case .response(let head, let body):
            let prepared = connection.finishResponse(head, bodyBytes: reply.bodyBytes)
            closing = prepared.closes
            HTTPConnection.write(prepared, parts: body.lazy.map(IOData.byteBuffer), context: context)
        case .fileResponse(let head, let body, let written):
            let prepared = connection.finishResponse(head, bodyBytes: reply.bodyBytes)
            closing = prepared.closes
            HTTPConnection.write(prepared, parts: body, context: context, written: written)
        case .encoded(let response, let extra):
            let (writesBody, closes, header) = connection.finishResponse(response)
            closing = closes
            HTTPConnection.write(response, extra: extra, writesBody: writesBody, closes: closes, connection: header, context: context)
        case .sse(let head, let start):
            sseBacklog = 0
            sessionAwaitsDrain = false
            let session = start(context.eventLoop)
            self.session = session
            var bytes = context.channel.allocator.buffer(capacity: 512)
            let (framed, chunked) = connection.streamingHead(head)
            sseChunked = chunked
            ResponseHeadEncoder.writeLines(framed, into: &bytes)
            bytes.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
            session.start(self)
            // Shutdown began while this request was being answered: end the stream at once
            // rather than let it run until the grace period closes the connection.
            if connection.quiescing { session.stop() }
        }
    }
}

extension HTTPServerHandler {
    /// Writes a reply on an HTTP/2 stream as typed parts. The same decisions as for HTTP/1.1
    /// (no body for HEAD, 204, 304), none of its connection framing: NIO's codec drops the
    /// connection-specific headers, and the stream, not the connection, ends with the response.
    private func writeParts(_ reply: ServerReply, context: ChannelHandlerContext) {
        switch reply {
        case .response(let head, let body):
            let prepared = connection.finishResponse(head, bodyBytes: reply.bodyBytes)
            writeParts(prepared.head, body: prepared.writesBody ? body.lazy.map(IOData.byteBuffer) : [], context: context)
        case .fileResponse(let head, let body, let written):
            // File ranges never reach TLS: servers that listen with TLS read into memory instead
            // (a range here would be a bug, which the codec reports as a failed write).
            let prepared = connection.finishResponse(head, bodyBytes: reply.bodyBytes)
            writeParts(prepared.head, body: prepared.writesBody ? body : [], context: context, written: written)
        case .encoded(let response, let extra):
            let (writesBody, _, _) = connection.finishResponse(response)
            var head = response.head
            for (name, value) in extra.pairs { head.headers.add(name: name, value: value) }
            if response.status.mayHaveResponseBody, !head.headers.contains(name: "Content-Length") {
                head.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
            }
            writeParts(head, body: writesBody && response.body.readableBytes > 0 ? [.byteBuffer(response.body)] : [], context: context)
        case .sse(var head, let start):
            sseBacklog = 0
            sessionAwaitsDrain = false
            let session = start(context.eventLoop)
            self.session = session
            head.headers.remove(name: "Content-Length")
            head.headers.remove(name: "Transfer-Encoding")
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            session.start(self)
            if connection.quiescing { session.stop() }
        }
    }

    private func writeParts(
        _ head: HTTPResponseHead, body: some Sequence<IOData>, context: ChannelHandlerContext, written: (@Sendable () -> Void)? = nil
    ) {
        var head = head
        head.headers.remove(name: "Transfer-Encoding")
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        for part in body where part.readableBytes > 0 {
            guard case .byteBuffer(var buffer) = part else {
                context.write(NIOAny(HTTPServerResponsePart.body(part)), promise: nil)
                continue
            }
            // In slices of a frame's size, each counted as it leaves: a slow reader of a large
            // answer is seen to make progress long before the whole of it has gone.
            while let slice = buffer.readSlice(length: min(buffer.readableBytes, Self.sliceBytes)) {
                let promise = context.eventLoop.makePromise(of: Void.self)
                let size = slice.readableBytes
                if let sent { promise.futureResult.assumeIsolated().whenSuccess { sent.add(size) } }
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(slice))), promise: promise)
                if buffer.readableBytes == 0 { break }
            }
        }
        let flushed = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
        if let written { flushed.whenComplete { _ in written() } }
        if !requestEnded { stopRequestBody(context: context) }
    }

    /// Answered before the request's body was all in (a refusal: too large, no room): RFC 9113
    /// §8.1 lets the server ask the client to stop sending with RST_STREAM(NO_ERROR) after a
    /// complete response, which the client must not discard. Without it the stream would stay
    /// open on the client's side for as long as it cares to keep sending. Written below NIO's
    /// HTTP/1 codec, which knows no such frame.
    private func stopRequestBody(context: ChannelHandlerContext) {
        closing = true
        guard let codec = try? context.pipeline.syncOperations.context(handlerType: HTTP2FramePayloadToHTTP1ServerCodec.self) else {
            context.close(promise: nil)
            return
        }
        codec.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(.noError)), promise: nil)
    }
}

extension HTTPServerHandler: SSEOutput {
    public var backlog: Int { sseBacklog }

    public func send(_ events: ByteBuffer) -> Int {
        // Gone: report a backlog no session waits out, so none produces more.
        guard let context else { return .max }
        let size = events.readableBytes
        guard size > 0 else { return sseBacklog }
        sseBacklog += size
        sending = true
        let written: EventLoopFuture<Void>
        if let sent {
            written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(events))))
            written.assumeIsolated().whenSuccess { sent.add(size) }
        } else if sseChunked {
            // Chunked framing (`streamingHead`): the size line, the events, the CRLF that ends it.
            var sizeLine = context.channel.allocator.buffer(capacity: 12)
            sizeLine.writeString(String(size, radix: 16))
            sizeLine.writeStaticString("\r\n")
            context.write(wrapOutboundOut(.byteBuffer(sizeLine)), promise: nil)
            context.write(wrapOutboundOut(.byteBuffer(events)), promise: nil)
            written = context.writeAndFlush(wrapOutboundOut(.byteBuffer(Self.chunkEnd)))
        } else {
            written = context.writeAndFlush(wrapOutboundOut(.byteBuffer(events)))
        }
        written.assumeIsolated().whenComplete { [self] _ in
            sseBacklog -= size
            if sseBacklog == 0, sessionAwaitsDrain {
                sessionAwaitsDrain = false
                if !sending { session?.drained() }
            }
        }
        sending = false
        sessionAwaitsDrain = sseBacklog > 0
        return sseBacklog
    }

    public func finish() {
        session = nil
        guard let context else { return }
        if isHTTP2 {
            // The end of the stream is the end of the response; the stream channel closes itself.
            let flushed = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
            context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
            return
        }
        // An unchunked stream (HTTP/1.0) ends with the connection.
        let flushed = context.writeAndFlush(wrapOutboundOut(.byteBuffer(sseChunked ? Self.lastChunk : ByteBuffer())))
        context.triggerUserOutboundEvent(ResponseWritten(flushed: flushed), promise: nil)
        flushed.assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }

    private static let chunkEnd = ByteBuffer(string: "\r\n")
    /// HTTP/2's default largest frame.
    private static let sliceBytes = 16 * 1024
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")
}
