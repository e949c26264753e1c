import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import OriginServer
import ServerSupport
import StreamStore
import TestSupport
import Testing

/// The connection handler driven through an EmbeddedChannel: no sockets, exact parts.
@Suite("HTTPServerHandler with the origin")
struct OriginHandlerTests {
    func makeChannel() throws -> EmbeddedChannel {
        let service = StreamService(configuration: OriginConfiguration(), store: MemoryStore(), metrics: OriginMetrics())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(responder: service))
        return channel
    }

    func send(_ channel: EmbeddedChannel, _ method: HTTPMethod, _ uri: String, headers: HTTPHeaders = [:], body: String? = nil) throws {
        var headers = headers
        headers.add(name: "Host", value: "example")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    /// The one response written since the last call, as a client decodes it.
    func readResponse(_ channel: EmbeddedChannel, toHead: Bool = false) throws -> (HTTPResponseHead, String) {
        let parts = try WrittenResponses.parts(channel, headRequests: toHead ? 1 : 0)
        guard case .head(let head)? = parts.first else { throw TestFailure("no response head") }
        var body = ""
        for part in parts.dropFirst() {
            switch part {
            case .body(let buffer): body += String(buffer: buffer)
            case .end: return (head, body)
            case .head: throw TestFailure("more than one response")
            }
        }
        throw TestFailure("response did not end")
    }

    struct TestFailure: Error { let message: String; init(_ message: String) { self.message = message } }

    @Test func createAppendRead() throws {
        let channel = try makeChannel()
        try send(channel, .PUT, "/v1/stream/e", headers: ["Content-Type": "text/plain"])
        #expect(try readResponse(channel).0.status == .created)
        try send(channel, .POST, "/v1/stream/e", headers: ["Content-Type": "text/plain"], body: "hi")
        #expect(try readResponse(channel).0.status == .noContent)
        try send(channel, .GET, "/v1/stream/e?offset=-1")
        let (head, body) = try readResponse(channel)
        #expect(head.status == .ok)
        #expect(body == "hi")
        #expect(head.headers.first(name: "Stream-Up-To-Date") == "true")
        _ = try channel.finish()
    }

    @Test func headResponsesCarryNoBody() throws {
        let channel = try makeChannel()
        try send(channel, .HEAD, "/v1/stream/missing")
        let (head, body) = try readResponse(channel, toHead: true)
        #expect(head.status == .notFound)
        #expect(body.isEmpty)
        _ = try channel.finish()
    }

    @Test func oversizeDeclaredBodyClosesTheConnection() throws {
        let channel = try makeChannel()
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(
            version: .http1_1, method: .POST, uri: "/v1/stream/e", headers: ["Host": "example", "Content-Length": String(1 << 40)])))
        let (head, _) = try readResponse(channel)
        #expect(head.status == .payloadTooLarge)
        #expect(head.headers.first(name: "Connection") == "close")
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}

/// Pipelined requests through the pipelining handler: writing one response delivers the next
/// request into the handler at once, which must cope with being re-entered.
@Suite("HTTPServerHandler with the origin, behind the pipelining handler")
struct PipelinedHandlerTests {
    @Test func backToBackRequestsAreAnsweredInOrder() throws {
        let service = StreamService(configuration: OriginConfiguration(), store: MemoryStore(), metrics: OriginMetrics())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPPipeliningHandler())
        try channel.pipeline.syncOperations.addHandler(HTTPServerHandler(responder: service))
        let put = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v1/stream/p", headers: ["Host": "example", "Content-Type": "text/plain"])
        let get = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/stream/p?offset=-1", headers: ["Host": "example"])
        // Both requests arrive before either is answered.
        for head in [put, get, get] {
            try channel.writeInbound(HTTPServerRequestPart.head(head))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
        }
        channel.embeddedEventLoop.run()
        var statuses: [HTTPResponseStatus] = []
        for part in try WrittenResponses.parts(channel) {
            if case .head(let head) = part { statuses.append(head.status) }
        }
        #expect(statuses == [.created, .ok, .ok])
        _ = try channel.finish()
    }
}
