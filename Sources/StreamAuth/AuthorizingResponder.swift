import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

/// Puts authentication in front of a server's responder: a request that needs credentials
/// (`AccessRequirement`) reaches `inner` only with a principal allowed to make it. Without
/// credentials, or with ones not accepted, it gets 401 and a `WWW-Authenticate` challenge
/// (RFC 6750); with credentials that do not cover it, 403.
public struct AuthorizingResponder: HTTPResponder {
    public let inner: any HTTPResponder
    public let authenticator: Authenticator
    public let streamPathPrefix: String
    /// What `/metrics` needs; `nil`: public.
    public let metricsScope: AccessScope?

    public init(_ inner: any HTTPResponder, authenticator: Authenticator, streamPathPrefix: String, metricsScope: AccessScope?) {
        self.inner = inner
        self.authenticator = authenticator
        self.streamPathPrefix = streamPathPrefix
        self.metricsScope = metricsScope
    }

    public var maxBodyBytes: Int { inner.maxBodyBytes }
    public func refusal(_ error: ProtocolError) -> ServerReply { inner.refusal(error) }
    public func connectionOpened() { inner.connectionOpened() }
    public func connectionClosed() { inner.connectionClosed() }

    public func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let head = request.head
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let requirement = AccessRequirement.of(
            method: head.method.rawValue, path: path, prefix: streamPathPrefix, metricsScope: metricsScope,
            header: { head.headers.first(name: $0) })
        guard !requirement.isPublic else { return inner.respond(to: request, live: live, on: loop) }
        let presented = head.headers["Authorization"]
        guard presented.count <= 1 else {
            return loop.makeSucceededFuture(inner.refusal(ProtocolError(.badRequest, "more than one Authorization header")))
        }
        return authenticator.authenticate(presented.first, on: loop).flatMap { [inner, authenticator] outcome in
            let realm = "Bearer realm=\"\(authenticator.realm)\""
            switch outcome {
            case .missing:
                return loop.makeSucceededFuture(inner.refusal(ProtocolError(
                    .unauthorized, "authentication required", headers: [("WWW-Authenticate", realm)])))
            case .invalid(let reason):
                return loop.makeSucceededFuture(inner.refusal(ProtocolError(
                    .unauthorized, reason, headers: [("WWW-Authenticate", "\(realm), error=\"invalid_token\"")])))
            case .principal(let principal):
                guard requirement.isSatisfied(by: principal) else {
                    return loop.makeSucceededFuture(inner.refusal(ProtocolError(
                        .forbidden, "credentials do not allow this request",
                        headers: [("WWW-Authenticate", "\(realm), error=\"insufficient_scope\"")])))
                }
                return inner.respond(to: request, live: live, on: loop)
            }
        }
    }
}
