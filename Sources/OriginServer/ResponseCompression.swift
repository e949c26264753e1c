import CompressNIO
import NIOCore
import NIOHTTP1
import ServerSupport

/// The origin's response compression: given a request and the reply the service made for it,
/// the reply to send. Complete replies are compressed whole, so a compressed reply still has a
/// `Content-Length` (the compressed size) and is never chunked.
///
/// Which replies are compressed, and with what, is what the origin did when swift-nio-extras'
/// `HTTPResponseCompressor` sat in each connection's pipeline:
/// - SSE is never touched: its events must leave as they happen.
/// - A reply whose `Content-Length` is at least `thresholdBytes` (and is not `text/event-stream`)
///   gets `Vary: Accept-Encoding`, compressed or not, so a cache keeps the variants apart.
/// - Such a reply is compressed when the request accepts gzip or deflate (`AcceptEncoding`) and
///   its status may have a body (not 1xx, 204 or 304).
///
/// Never compressed either, though they may get `Vary`:
/// - file replies (`ServerReply.fileResponse`), whose parts may be file ranges; the service only
///   makes them for requests that accept no coding (`StreamService.mayCompress`);
/// - answers to HEAD, whose body is never sent: its headers must describe the body a GET would
///   get, and compressing nothing would announce the length of an empty gzip stream.
/// A body that fails to compress goes out as it was.
struct ResponseCompression: Sendable {
    /// Smaller bodies are sent as they are: the coding's framing would cost more than it saves.
    var thresholdBytes: Int

    /// The reply to send for `reply`, the service's answer to a request with head `request`.
    func reply(_ reply: ServerReply, to request: HTTPRequestHead) -> ServerReply {
        switch reply {
        case .sse, .encoded:
            // An encoded reply is final bytes; the origin makes none for a request that may
            // get a compressed answer.
            return reply
        case .fileResponse(var head, let body, let written):
            guard markVariant(&head) else { return reply }
            return .fileResponse(head, body: body, written: written)
        case .response(var head, let body):
            guard markVariant(&head) else { return reply }
            guard request.method != .HEAD, head.status.mayHaveResponseBody,
                  let coding = AcceptEncoding.preferredCoding(in: request.headers),
                  let compressed = try? Self.compress(body, with: coding)
            else { return .response(head, body: body) }
            head.headers.replaceOrAdd(name: "Content-Encoding", value: coding.headerValue)
            head.headers.remove(name: "Transfer-Encoding")
            head.headers.replaceOrAdd(name: "Content-Length", value: String(compressed.readableBytes))
            return .response(head, body: [compressed])
        }
    }

    /// Whether a reply with this head is big enough to compress, in which case it varies by
    /// `Accept-Encoding` and says so (added even when it turns out not to be compressed).
    private func markVariant(_ head: inout HTTPResponseHead) -> Bool {
        if head.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true { return false }
        guard let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length >= thresholdBytes else {
            return false
        }
        head.headers.add(name: "Vary", value: "Accept-Encoding")
        return true
    }

    /// The body's parts as one compressed buffer.
    static func compress(_ parts: [ByteBuffer], with coding: ContentCoding) throws -> ByteBuffer {
        var input: ByteBuffer
        if parts.count == 1 {
            input = parts[0]
        } else {
            // The whole body goes to zlib in one call, as it did in the pipeline compressor.
            input = ByteBuffer()
            input.reserveCapacity(parts.reduce(0) { $0 + $1.readableBytes })
            for part in parts { input.writeImmutableBuffer(part) }
        }
        return try input.compress(with: coding.algorithm)
    }
}
