import CompressNIO
import DurableStreams
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import OriginServer
import ServerSupport
import Testing

/// `Accept-Encoding` negotiation: the rules swift-nio-extras' response compressor applied.
@Suite("Accept-Encoding negotiation")
struct AcceptEncodingTests {
    func coding(_ values: String...) -> ContentCoding? {
        var headers = HTTPHeaders()
        for value in values { headers.add(name: "Accept-Encoding", value: value) }
        return AcceptEncoding.preferredCoding(in: headers)
    }

    @Test func noHeaderOrIdentityMeansNoCoding() {
        #expect(coding() == nil)
        #expect(coding("identity") == nil)
        #expect(coding("br") == nil)
        #expect(coding("") == nil)
    }

    @Test func gzipAndItsAlias() {
        #expect(coding("gzip") == .gzip)
        #expect(coding("x-gzip") == .gzip)
        #expect(coding("identity, gzip") == .gzip)
        #expect(coding("br", "gzip") == .gzip)
    }

    @Test func deflate() {
        #expect(coding("deflate") == .deflate)
        #expect(coding("deflate, identity") == .deflate)
    }

    @Test func qZeroRefuses() {
        #expect(coding("gzip;q=0") == nil)
        #expect(coding("gzip;q=0.0") == nil)
        #expect(coding("deflate;q=0") == nil)
        #expect(coding("gzip;q=0, deflate") == .deflate)
        #expect(coding("deflate;q=0, gzip") == .gzip)
    }

    @Test func higherQValueWins() {
        #expect(coding("gzip;q=0.5, deflate;q=0.8") == .deflate)
        #expect(coding("gzip;q=0.9, deflate;q=0.8") == .gzip)
        #expect(coding("gzip;Q=0.9, deflate;q=0.8") == .gzip)
        #expect(coding("deflate;q=0.5", "gzip") == .gzip)
    }

    /// A tie goes to deflate: the compressor chose gzip only when its q-value was greater.
    @Test func aTieGoesToDeflate() {
        #expect(coding("gzip, deflate") == .deflate)
        #expect(coding("deflate, gzip") == .deflate)
        #expect(coding("gzip;q=0.5, deflate;q=0.5") == .deflate)
    }

    @Test func starMeansGzip() {
        #expect(coding("*") == .gzip)
        #expect(coding("*;q=0.1") == .gzip)
        #expect(coding("*;q=0") == nil)
        #expect(coding("identity, *") == .gzip)
        // A named coding the client accepts is preferred over `*`.
        #expect(coding("deflate, *") == .deflate)
        // As before: `*` still picks gzip when gzip itself was refused.
        #expect(coding("gzip;q=0, *") == .gzip)
    }

    /// Parameters other than a well-formed, unspaced `q` count as refusal, as they did.
    @Test func malformedQValuesRefuse() {
        #expect(coding("gzip;q") == nil)
        #expect(coding("gzip;q=") == nil)
        #expect(coding("gzip;q=abc") == nil)
        #expect(coding("gzip;q=2") == nil)
        #expect(coding("gzip;q=-1") == nil)
        #expect(coding("gzip;q=nan") == nil)
        #expect(coding("gzip; q=0.5") == nil)
        #expect(coding("gzip;level=1") == nil)
        #expect(coding("gzip;") == .gzip)
    }

    /// Codings are matched case-sensitively by prefix; a later element replaces an earlier one.
    @Test func matchingIsByPrefixAndTheLastElementCounts() {
        #expect(coding("GZIP") == nil)
        #expect(coding("gzipped") == .gzip)
        #expect(coding("gzip, gzip;q=0") == nil)
        #expect(coding("gzip;q=0, gzip") == .gzip)
    }

    @Test func qValues() {
        #expect(AcceptEncoding.qValue(of: "gzip") == 1)
        #expect(AcceptEncoding.qValue(of: "gzip;q=0.25") == 0.25)
        #expect(AcceptEncoding.qValue(of: "gzip;q=1") == 1)
        #expect(AcceptEncoding.qValue(of: "gzip;q=0") == 0)
    }
}

/// What the origin sends for each kind of reply, with and without compression.
@Suite("Response compression")
struct ResponseCompressionTests {
    static let threshold = 1024
    let compression = ResponseCompression(thresholdBytes: threshold)

    static func request(_ method: HTTPMethod = .GET, acceptEncoding: String? = "gzip") -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: "/v1/stream/s", headers: ["Host": "h"])
        if let acceptEncoding { head.headers.add(name: "Accept-Encoding", value: acceptEncoding) }
        return head
    }

    static func text(_ count: Int) -> String {
        String(repeating: "compressible text ", count: count / 18 + 1).prefix(count).description
    }

    static func response(_ body: [String], status: HTTPResponseStatus = .ok, contentType: String = "text/plain") -> ServerReply {
        let length = body.reduce(0) { $0 + $1.utf8.count }
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: [
            "Content-Type": contentType, "Content-Length": String(length), "Cache-Control": "no-store",
        ])
        return .response(head, body: body.map { ByteBuffer(string: $0) })
    }

    func parts(_ reply: ServerReply) -> (HTTPResponseHead, [ByteBuffer]) {
        guard case .response(let head, let body) = reply else {
            Issue.record("expected a complete response, got \(reply)")
            return (reply.head, [])
        }
        return (head, body)
    }

    func decompressed(_ body: [ByteBuffer], with algorithm: CompressionAlgorithm) throws -> String {
        #expect(body.count == 1)
        var compressed = body[0]
        return String(buffer: try compressed.decompress(with: algorithm))
    }

    @Test func aBodyBelowTheThresholdIsUntouched() {
        let original = Self.response([Self.text(Self.threshold - 1)])
        let (head, body) = parts(compression.reply(original, to: Self.request()))
        #expect(head == original.head)
        #expect(body == parts(original).1)
        #expect(head.headers["Vary"].isEmpty)
    }

    @Test func aLargeBodyIsGzippedAndRoundTrips() throws {
        let text = Self.text(9000)
        let (head, body) = parts(compression.reply(Self.response([text]), to: Self.request()))
        #expect(head.headers["Content-Encoding"] == ["gzip"])
        #expect(head.headers["Vary"] == ["Accept-Encoding"])
        #expect(head.headers["Content-Length"] == [String(body.reduce(0) { $0 + $1.readableBytes })])
        #expect(head.headers["Transfer-Encoding"].isEmpty)
        #expect(body[0].readableBytes < 9000)
        #expect(try decompressed(body, with: .gzip()) == text)
        // The other headers stay as the service made them.
        #expect(head.headers["Content-Type"] == ["text/plain"])
        #expect(head.headers["Cache-Control"] == ["no-store"])
    }

    /// HTTP's deflate is the zlib format (a zlib header, 0x78 with the default window).
    @Test func deflateIsTheZlibFormat() throws {
        let text = Self.text(5000)
        let (head, body) = parts(compression.reply(Self.response([text]), to: Self.request(acceptEncoding: "deflate")))
        #expect(head.headers["Content-Encoding"] == ["deflate"])
        #expect(body[0].getInteger(at: body[0].readerIndex, as: UInt8.self) == 0x78)
        #expect(try decompressed(body, with: .zlib()) == text)
    }

    @Test func aBodyInSeveralPartsIsCompressedWhole() throws {
        let pieces = [Self.text(700), "", Self.text(900), Self.text(30)]
        let (head, body) = parts(compression.reply(Self.response(pieces), to: Self.request()))
        #expect(head.headers["Content-Encoding"] == ["gzip"])
        #expect(try decompressed(body, with: .gzip()) == pieces.joined())
    }

    @Test func atTheThresholdItCompresses() {
        let (head, _) = parts(compression.reply(Self.response([Self.text(Self.threshold)]), to: Self.request()))
        #expect(head.headers["Content-Encoding"] == ["gzip"])
    }

    /// Big enough to compress, but the client takes no coding: sent as is, still marked as varying.
    @Test func aLargeBodyForAClientWithoutCodingsOnlyGetsVary() {
        for acceptEncoding in [nil, "identity", "gzip;q=0", "br"] {
            let original = Self.response([Self.text(5000)])
            let (head, body) = parts(compression.reply(original, to: Self.request(acceptEncoding: acceptEncoding)))
            #expect(head.headers["Vary"] == ["Accept-Encoding"])
            #expect(head.headers["Content-Encoding"].isEmpty)
            #expect(head.headers["Content-Length"] == ["5000"])
            #expect(body == parts(original).1)
        }
    }

    @Test func aReplyWithoutContentLengthIsUntouched() {
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/plain"])
        let original = ServerReply.response(head, body: [ByteBuffer(string: Self.text(5000))])
        let (sent, body) = parts(compression.reply(original, to: Self.request()))
        #expect(sent == head)
        #expect(body == parts(original).1)
    }

    @Test func statusesWithoutABodyGetVaryButNoCoding() {
        for status in [HTTPResponseStatus.noContent, .notModified] {
            let (head, _) = parts(compression.reply(Self.response([Self.text(2000)], status: status), to: Self.request()))
            #expect(head.headers["Vary"] == ["Accept-Encoding"])
            #expect(head.headers["Content-Encoding"].isEmpty)
        }
    }

    /// HEAD's answer describes the GET body; nothing is compressed.
    @Test func headIsNotCompressed() {
        let original = Self.response([Self.text(5000)])
        let (head, body) = parts(compression.reply(original, to: Self.request(.HEAD)))
        #expect(head.headers["Vary"] == ["Accept-Encoding"])
        #expect(head.headers["Content-Encoding"].isEmpty)
        #expect(head.headers["Content-Length"] == ["5000"])
        #expect(body == parts(original).1)
    }

    @Test func eventStreamsAreNeverTouched() {
        let original = Self.response([Self.text(5000)], contentType: "text/event-stream")
        let (head, body) = parts(compression.reply(original, to: Self.request()))
        #expect(head == original.head)
        #expect(body == parts(original).1)
        let sse = ServerReply.sse(SSEResponseHead.make(base64: false)) { _ in NoSession() }
        guard case .sse(let sent, _) = compression.reply(sse, to: Self.request()) else {
            Issue.record("an SSE reply must stay SSE")
            return
        }
        #expect(sent == sse.head)
    }

    /// File replies are sent as they are (they may be file ranges); like every reply of their
    /// size they vary by `Accept-Encoding`.
    @Test func fileRepliesAreNotCompressed() {
        let data = ByteBuffer(string: Self.text(5000))
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/plain", "Content-Length": "5000"])
        let written = NIOLockedValueBox(0)
        let original = ServerReply.fileResponse(head, body: [.byteBuffer(data)], written: { written.withLockedValue { $0 += 1 } })
        guard case .fileResponse(let sent, let body, let done) = compression.reply(original, to: Self.request()) else {
            Issue.record("a file reply must stay a file reply")
            return
        }
        #expect(sent.headers["Content-Encoding"].isEmpty)
        #expect(sent.headers["Content-Length"] == ["5000"])
        #expect(sent.headers["Vary"] == ["Accept-Encoding"])
        #expect(body == [.byteBuffer(data)])
        done()
        #expect(written.withLockedValue { $0 } == 1)

        let small = ServerReply.fileResponse(
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "10"]), body: [], written: {})
        guard case .fileResponse(let smallHead, _, _) = compression.reply(small, to: Self.request()) else {
            Issue.record("a file reply must stay a file reply")
            return
        }
        #expect(smallHead == small.head)
    }

    /// With no threshold an empty body is compressed too (to an empty gzip stream), as before.
    @Test func anEmptyBodyAtAZeroThreshold() throws {
        let compression = ResponseCompression(thresholdBytes: 0)
        let (head, body) = parts(compression.reply(Self.response([]), to: Self.request()))
        #expect(head.headers["Content-Encoding"] == ["gzip"])
        #expect(try decompressed(body, with: .gzip()) == "")
        let (plain, _) = parts(compression.reply(Self.response([]), to: Self.request(.HEAD)))
        #expect(plain.headers["Content-Encoding"].isEmpty)
        #expect(plain.headers["Content-Length"] == ["0"])
    }

    final class NoSession: SSESession {
        func start(_ output: any SSEOutput) {}
        func drained() {}
        func stop() {}
        func cancel() {}
    }
}

/// The decorator in front of the service: forwards everything, compresses the replies.
@Suite("CompressingResponder")
struct CompressingResponderTests {
    /// Answers every request with one reply and counts what it is told.
    final class FixedResponder: HTTPResponder, @unchecked Sendable {
        let reply: ServerReply
        let lock = NIOLock()
        var opened = 0
        var closed = 0
        var requests: [HTTPRequestHead] = []
        init(_ reply: ServerReply) { self.reply = reply }

        var maxBodyBytes: Int { 4321 }
        func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
            lock.withLock { requests.append(request.head) }
            return .now(reply)
        }
        func refusal(_ error: ProtocolError) -> ServerReply {
            ResponseCompressionTests.response([error.reason + String(repeating: " ", count: 2000)], status: .payloadTooLarge)
        }
        func connectionOpened() { lock.withLock { opened += 1 } }
        func connectionClosed() { lock.withLock { closed += 1 } }
    }

    func respond(_ responder: CompressingResponder, _ head: HTTPRequestHead) throws -> ServerReply {
        let loop = EmbeddedEventLoop()
        defer { try? loop.syncShutdownGracefully() }
        var reply: ServerReply?
        responder.respond(to: ServerRequest(head: head, body: ByteBuffer()), live: LiveRequest(), on: loop).future(on: loop)
            .assumeIsolated().whenSuccess { reply = $0 }
        loop.run()
        guard let reply else { throw Failure("no reply") }
        return reply
    }

    @Test func compressesTheInnerRepliesAndForwardsTheRest() throws {
        let text = ResponseCompressionTests.text(8000)
        let inner = FixedResponder(ResponseCompressionTests.response([text]))
        let responder = CompressingResponder(inner, compression: ResponseCompression(thresholdBytes: 1024))
        #expect(responder.maxBodyBytes == 4321)
        responder.connectionOpened()
        responder.connectionOpened()
        responder.connectionClosed()
        #expect(inner.opened == 2)
        #expect(inner.closed == 1)

        let gzip = try respond(responder, ResponseCompressionTests.request())
        guard case .response(let head, var body) = gzip else { throw Failure("not a response") }
        #expect(head.headers["Content-Encoding"] == ["gzip"])
        #expect(head.headers["Vary"] == ["Accept-Encoding"])
        #expect(String(buffer: try body[0].decompress(with: .gzip())) == text)

        let plain = try respond(responder, ResponseCompressionTests.request(acceptEncoding: nil))
        guard case .response(let plainHead, let plainBody) = plain else { throw Failure("not a response") }
        #expect(plainHead.headers["Content-Encoding"].isEmpty)
        #expect(plainBody == [ByteBuffer(string: text)])
        #expect(inner.requests.count == 2)
    }

    /// Refusals have no request head to negotiate with: they go out as the service made them.
    @Test func refusalsAreForwardedAsTheyAre() {
        let inner = FixedResponder(ResponseCompressionTests.response(["x"]))
        let responder = CompressingResponder(inner, compression: ResponseCompression(thresholdBytes: 0))
        let refusal = responder.refusal(ProtocolError(.payloadTooLarge, "too large"))
        #expect(refusal.status == .payloadTooLarge)
        #expect(refusal.head.headers["Vary"].isEmpty)
        #expect(refusal.head.headers["Content-Encoding"].isEmpty)
    }

    struct Failure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
