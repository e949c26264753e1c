/// A request decoded into the protocol operation it asks for (§5), with every header and query
/// parameter validated. Decoding is pure, so every rejection is testable without a server.
public enum StreamOperation: Sendable {
    case create(Create)
    case append(Append)
    case read(Read)
    case head
    case delete

    /// `PUT`: create, or confirm an identical stream exists.
    public struct Create: Sendable {
        /// `nil` when the request sent none: `application/octet-stream` for a new stream, the
        /// source's type for a fork (§4.2).
        public var contentType: ContentType?
        public var lifetime: StreamLifetime
        public var closed: Bool
        /// The fork this `PUT` asks for (§4.2), if any.
        public var fork: ForkRequest?
    }

    /// `POST`: append, close, or both.
    public struct Append: Sendable {
        /// `nil` only for a close without a body, where the type is irrelevant.
        public var contentType: ContentType?
        public var seq: String?
        public var closed: Bool
        public var producer: ProducerClaim?
    }

    /// `GET`: a catch-up, long-poll or SSE read.
    public struct Read: Sendable {
        public var start: ReadStart
        public var mode: ReadMode
        public var ifNoneMatch: String?

        public init(start: ReadStart, mode: ReadMode, ifNoneMatch: String? = nil) {
            self.start = start
            self.mode = mode
            self.ifNoneMatch = ifNoneMatch
        }
    }

    /// The three read modes.
    public enum ReadMode: Hashable, Sendable {
        case catchUp
        case longPoll(cursor: Substring?)
        case sse(cursor: Substring?)

        public var isLive: Bool { self != .catchUp }

        public var cursor: Substring? {
            switch self {
            case .catchUp: return nil
            case .longPoll(let cursor), .sse(let cursor): return cursor
            }
        }
    }

    /// The methods a stream URL answers, for `Allow` on a 405.
    public static let allowedMethods = "GET, HEAD, PUT, POST, DELETE, OPTIONS"

    /// Decodes a request.
    /// - Parameters:
    ///   - method: the HTTP method, upper case.
    ///   - query: the raw query string (without `?`).
    ///   - header: looks up a request header by name (case-insensitive, first value).
    ///   - bodyLength: the number of body bytes received.
    public static func decode(
        method: String, query: Substring, header: (String) -> String?, bodyLength: Int
    ) throws(ProtocolError) -> StreamOperation {
        switch method {
        case "PUT":
            let fork = try ForkRequest(header: header)
            var contentType: ContentType?
            if let value = header("Content-Type") {
                guard let parsed = ContentType(value) else {
                    throw ProtocolError(.badRequest, "malformed Content-Type")
                }
                contentType = parsed
            }
            let lifetime = try StreamLifetime(ttlHeader: header(HeaderName.ttl), expiresAtHeader: header(HeaderName.expiresAt))
            return .create(Create(
                contentType: contentType, lifetime: lifetime, closed: HeaderName.isTrue(header(HeaderName.closed)), fork: fork))

        case "POST":
            let closed = HeaderName.isTrue(header(HeaderName.closed))
            guard bodyLength > 0 || closed else {
                throw ProtocolError(.badRequest, "empty body: an append needs data, or Stream-Closed: true to close")
            }
            var contentType: ContentType?
            if bodyLength > 0 {
                guard let value = header("Content-Type") else {
                    throw ProtocolError(.badRequest, "missing Content-Type")
                }
                guard let parsed = ContentType(value) else { throw ProtocolError(.badRequest, "malformed Content-Type") }
                contentType = parsed
            }
            let producer = try ProducerClaim(
                id: header(HeaderName.producerID), epoch: header(HeaderName.producerEpoch), seq: header(HeaderName.producerSeq))
            let seq = header(HeaderName.seq)
            if let seq, seq.isEmpty { throw ProtocolError(.badRequest, "Stream-Seq must not be empty") }
            return .append(Append(contentType: contentType, seq: seq, closed: closed, producer: producer))

        case "GET":
            let parameters = try QueryParameters(query: query)
            for name in ["offset", "live", "cursor"] where parameters.isRepeated(name) {
                throw ProtocolError(.badRequest, "query parameter '\(name)' given more than once")
            }
            let offset = parameters["offset"]
            let start = try ReadStart(queryValue: offset.map { Substring($0) })
            let cursor = parameters["cursor"].map { Substring($0) }
            let mode: ReadMode
            switch parameters["live"] {
            case nil: mode = .catchUp
            case "long-poll": mode = .longPoll(cursor: cursor)
            case "sse": mode = .sse(cursor: cursor)
            case let other?: throw ProtocolError(.badRequest, "unknown live mode '\(other)': use long-poll or sse")
            }
            if mode.isLive && offset == nil {
                throw ProtocolError(.badRequest, "live reads require an offset")
            }
            return .read(Read(start: start, mode: mode, ifNoneMatch: header("If-None-Match")))

        case "HEAD":
            return .head

        case "DELETE":
            return .delete

        default:
            throw ProtocolError(.methodNotAllowed, "method \(method) is not supported on a stream", headers: [("Allow", allowedMethods)])
        }
    }
}

/// Stream names: the part of the URL path after the streams prefix.
public enum StreamPath {
    /// The longest stream name accepted.
    public static let maxLength = 1024

    /// Validates a stream name taken from a URL path: non-empty, bounded, no empty, `.` or `..`
    /// segments (no path traversal, §12.2) and no control characters. Percent-escapes are
    /// decoded (`+` stays a plus in a path). Runs on every request, so the common case of a
    /// name without escapes is checked in one pass without allocating.
    public static func validate(_ name: Substring) throws(ProtocolError) -> String {
        guard !name.isEmpty else { throw ProtocolError(.badRequest, "missing stream name") }
        guard name.utf8.count <= maxLength else { throw ProtocolError(.badRequest, "stream name longer than \(maxLength) bytes") }
        let decoded: String
        if name.utf8.contains(UInt8(ascii: "%")) {
            guard let value = QueryParameters.percentDecode(name, plusIsSpace: false) else {
                throw ProtocolError(.badRequest, "malformed percent-encoding in stream name")
            }
            decoded = value
        } else {
            decoded = String(name)
        }
        var segmentLength = 0
        var dots = 0
        for byte in decoded.utf8 {
            if byte == UInt8(ascii: "/") {
                guard segmentLength > 0, dots != segmentLength || dots > 2 else { throw badSegment }
                segmentLength = 0
                dots = 0
                continue
            }
            guard byte >= 0x20, byte != 0x7F else {
                throw ProtocolError(.badRequest, "stream name contains control characters")
            }
            segmentLength += 1
            if byte == UInt8(ascii: ".") { dots += 1 }
        }
        guard segmentLength > 0, dots != segmentLength || dots > 2 else { throw badSegment }
        return decoded
    }

    private static var badSegment: ProtocolError {
        ProtocolError(.badRequest, "stream name has an empty, '.' or '..' segment")
    }
}

extension StreamPath {
    /// The canonical name of the stream a URL path addresses: the part after `prefix`,
    /// percent-decoded and validated exactly as the origin does (`validate`). Every spelling of
    /// one stream (`a-b`, `a%2Db`, `%61-b`, `a%2Fb` for `a/b`) gives the same name, so anything
    /// keyed by stream (the origin's store, an edge's cache, flights, subscriptions, purges) must
    /// be keyed by this and not by the raw path.
    /// - Parameters:
    ///   - path: the request target's path, without the query.
    ///   - prefix: the streams prefix, e.g. `/v1/stream/`; compared byte for byte.
    /// - Throws: 404 when the path is not under `prefix`, 400 when the name is invalid.
    public static func canonicalName(urlPath path: Substring, prefix: String) throws(ProtocolError) -> String {
        guard path.utf8.starts(with: prefix.utf8) else {
            throw ProtocolError(.notFound, "no route: streams live under \(prefix)<name>")
        }
        let nameStart = path.utf8.index(path.startIndex, offsetBy: prefix.utf8.count)
        return try validate(path[nameStart...])
    }

    /// The URL path for a canonical stream name: `prefix` followed by the name with every byte
    /// percent-encoded except unreserved characters (RFC 3986 §2.3) and `/`, which separates
    /// segments of a name either way. `canonicalName(urlPath:prefix:)` gives the name back.
    public static func urlPath(forName name: String, prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        bytes.reserveCapacity(prefix.utf8.count + name.utf8.count)
        for byte in name.utf8 {
            if isUnreservedOrSlash(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isUnreservedOrSlash(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
