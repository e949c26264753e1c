import NIOCore
import NIOHTTP1

/// A complete response serialized once and written many times: a cache entry or a collapsed
/// answer keeps one, and each request it answers costs a write of these shared bytes plus the
/// few header lines that are its own (`Age`, `X-Cache`, `Connection: close`), not a rebuild of
/// its head.
public struct EncodedResponse: Sendable {
    /// The head it was made from, as given (before framing): for those that read its facts.
    /// Shares its storage with the caller's copy.
    public let head: HTTPResponseHead
    public var status: HTTPResponseStatus { head.status }
    /// The status line and every header line, `Content-Length` included, each ending in CRLF;
    /// not the blank line that ends the head, so that per-request lines can follow.
    public let headLines: ByteBuffer
    public let body: ByteBuffer
    /// The first `Cache-Control` value, found once: a verifying edge looks at it on every hit it
    /// serves (see `AuthorizingResponder.privatised`).
    public let cacheControl: String?

    /// Frames `head` for `body` (a `Content-Length` for a status that has a body, no
    /// `Transfer-Encoding`) and serializes it.
    public init(_ head: HTTPResponseHead, body: ByteBuffer) {
        var headers = head.headers
        headers.remove(name: "Transfer-Encoding")
        headers.remove(name: "Connection")
        if head.status.mayHaveResponseBody {
            if !headers.contains(name: "Content-Length") {
                headers.add(name: "Content-Length", value: String(body.readableBytes))
            }
        } else {
            headers.remove(name: "Content-Length")
        }
        var lines = ByteBuffer()
        lines.reserveCapacity(64 + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        ResponseHeadEncoder.writeLines(HTTPResponseHead(version: head.version, status: head.status, headers: headers), into: &lines)
        self.head = head
        self.cacheControl = headers.first(name: "Cache-Control")
        self.headLines = lines
        self.body = head.status.mayHaveResponseBody ? body : ByteBuffer()
    }
}

/// The header lines one request adds to an `EncodedResponse`.
public struct ExtraHeaderLines: Sendable {
    public private(set) var bytes: ByteBuffer

    public init() {
        bytes = ByteBuffer()
        bytes.reserveCapacity(64)
    }

    public mutating func add(name: String, value: String) {
        ResponseHeadEncoder.writeHeader(name: name, value: value, into: &bytes)
    }

    /// Every line as a name and a value.
    public var pairs: [(String, String)] {
        String(decoding: bytes.readableBytesView, as: UTF8.self).split(separator: "\r\n").compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// The value of the first line named `name` (ASCII case-insensitive), for logs.
    public func value(of name: String) -> String? {
        let text = String(decoding: bytes.readableBytesView, as: UTF8.self)
        for line in text.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
