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
    /// Who may do what, now (replaceable on reload).
    public let policy: AuthPolicy
    public let streamPathPrefix: String
    /// The server's own endpoints, and what they need (`nil`: public).
    public let operationalPaths: Set<String>
    /// What an authorised read carries on to `inner`.
    public let readCredential: ReadCredential

    /// What happens to the `Authorization` of a read once it is authorised.
    public enum ReadCredential: Sendable, Equatable {
        /// It stays (the origin: nothing further looks at it).
        case keep
        /// It is replaced by this value, or removed when `nil` (an edge that checks credentials
        /// itself: every authorised reader then shares one cache entry and one upstream request,
        /// made with the edge's own credential).
        case replace(String?)
    }

    public init(
        _ inner: any HTTPResponder, policy: AuthPolicy, streamPathPrefix: String,
        operationalPaths: Set<String> = ["/metrics"], readCredential: ReadCredential = .keep
    ) {
        self.inner = inner
        self.policy = policy
        self.streamPathPrefix = streamPathPrefix
        self.operationalPaths = operationalPaths
        self.readCredential = readCredential
    }

    public var maxBodyBytes: Int { inner.maxBodyBytes }
    public func refusal(_ error: ProtocolError) -> ServerReply { inner.refusal(error) }
    public func connectionOpened() { inner.connectionOpened() }
    public func connectionClosed() { inner.connectionClosed() }

    public func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let policy = self.policy.current
        guard let authenticator = policy.authenticator else { return inner.respond(to: request, live: live, on: loop) }
        let head = request.head
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let requirement = AccessRequirement.of(
            method: head.method.rawValue, path: path, prefix: streamPathPrefix, operationalPaths: operationalPaths,
            operationalScope: policy.operationalScope, header: { head.headers.first(name: $0) })
        guard !requirement.isPublic else { return inner.respond(to: request, live: live, on: loop) }
        let presented = head.headers["Authorization"]
        guard presented.count <= 1 else {
            return loop.makeSucceededFuture(inner.refusal(ProtocolError(.badRequest, "more than one Authorization header")))
        }
        return authenticator.authenticate(presented.first, on: loop).flatMap { [inner, authenticator, readCredential] outcome in
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
                guard case .replace(let credential) = readCredential, head.method == .GET || head.method == .HEAD else {
                    return inner.respond(to: request, live: live, on: loop)
                }
                var authorised = request
                authorised.head.headers.remove(name: "Authorization")
                if let credential { authorised.head.headers.add(name: "Authorization", value: credential) }
                return inner.respond(to: authorised, live: live, on: loop)
            }
        }
    }
}
