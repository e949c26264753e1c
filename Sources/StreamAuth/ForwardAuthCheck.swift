import Crypto
import DurableStreams
import NIOHTTP1

/// One question put to the forward-auth endpoint: may the holder of this `Authorization` have
/// `scope` on `stream`, for this request? A request asks one per need of its
/// `AccessRequirement` (a fork asks two: write on itself, read on its source).
///
/// What the endpoint receives (`headers`):
///
/// | header | value |
/// |---|---|
/// | `Authorization` | the request's, unchanged (absent when it had none) |
/// | `X-Forwarded-Method` | the request's method |
/// | `X-Forwarded-Uri` | the request's target: path and query, as sent |
/// | `X-Forwarded-Host` | the request's `Host` (never a client's `X-Forwarded-Host`) |
/// | `X-Durable-Streams-Scope` | `read`, `write` or `admin` |
/// | `X-Durable-Streams-Stream` | the stream's canonical name, percent-encoded as in a URL path (`chat/room%201`); absent when the need is the server as a whole (`/metrics`, a path that names no stream) |
///
/// `Cookie` is not sent: browsers attach cookies to cross-site requests, so an origin that
/// took them for credentials could be made to append on a visitor's behalf by any page
/// (`Authorization` is never attached that way), and an edge partitions its cache by
/// `Authorization` only.
public struct ForwardAuthCheck: Hashable, Sendable {
    public var authorization: String?
    public var method: String
    /// The request target, path and query.
    public var uri: String
    public var host: String?
    public var scope: AccessScope
    /// The canonical stream name; `nil` or `""`: the server as a whole.
    public var stream: String?

    public init(authorization: String?, method: String, uri: String, host: String?, scope: AccessScope, stream: String?) {
        self.authorization = authorization
        self.method = method
        self.uri = uri
        self.host = host
        self.scope = scope
        self.stream = stream
    }

    public static let scopeHeader = "X-Durable-Streams-Scope"
    public static let streamHeader = "X-Durable-Streams-Stream"

    /// The checks a request needs, in the order they are asked.
    public static func checks(for requirement: AccessRequirement, head: HTTPRequestHead) -> [ForwardAuthCheck] {
        let authorization = head.headers.first(name: "Authorization")
        let host = head.headers.first(name: "Host")
        return requirement.needs.map { need in
            ForwardAuthCheck(
                authorization: authorization, method: head.method.rawValue, uri: head.uri, host: host, scope: need.scope,
                stream: need.stream)
        }
    }

    /// The headers of the request to the endpoint (besides `Host` and `Connection`).
    public var headers: [(String, String)] {
        var headers: [(String, String)] = []
        if let authorization { headers.append(("Authorization", authorization)) }
        headers.append(("X-Forwarded-Method", method))
        headers.append(("X-Forwarded-Uri", uri))
        if let host { headers.append(("X-Forwarded-Host", host)) }
        headers.append((Self.scopeHeader, scope.description))
        if let stream, !stream.isEmpty {
            headers.append((Self.streamHeader, StreamPath.urlPath(forName: stream, prefix: "")))
        }
        return headers
    }

    /// The path part of `uri`: decisions are shared across queries (a reader's offset changes
    /// with every read), never across anything else the endpoint sees.
    public var path: Substring { RequestTarget(uri).path }

    /// What a decision is remembered by: a SHA-256 over every header the endpoint sees, the
    /// query aside, so a decision is reused only for a check that would send the same question.
    /// A digest, not the values, so that 10,000 entries cost the same whatever clients send.
    public var key: Key {
        var hasher = SHA256()
        // Each field length-prefixed and marked present or absent, so no two different checks
        // hash the same bytes ("ab" + "c" against "a" + "bc", nil against "").
        func field(_ value: (some StringProtocol)?) {
            guard let value else {
                hasher.update(data: [0])
                return
            }
            let bytes = Array(value.utf8)
            var length = UInt64(bytes.count).bigEndian
            hasher.update(data: [1])
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        field(authorization)
        field(method)
        field(path)
        field(host)
        field(scope.description)
        field((stream?.isEmpty ?? true) ? nil : stream)
        return Key(digest: hasher.finalize())
    }

    /// A decision's key in the cache and among the checks in flight.
    public struct Key: Hashable, Sendable {
        let digest: SHA256Digest
    }
}
