import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport

/// Puts authentication in front of a server's responder: a request that needs credentials
/// (`AccessRequirement`) reaches `inner` only with a principal allowed to make it. Without
/// credentials, or with ones not accepted, it gets 401 and a `WWW-Authenticate` challenge
/// (RFC 6750); with credentials that do not cover it, 403. With forward auth, the endpoint's
/// decision stands in for both (see `respond(to:requirement:authority:live:on:)`).
public struct AuthorizingResponder: HTTPResponder {
    /// An answer given on the strength of credentials must not be kept by a shared cache for
    /// others (RFC 9111 §3.5 lets a shared cache reuse a `public` answer to a request that had
    /// `Authorization`): `public` becomes `private`, and `Vary: Authorization` is added. An edge
    /// in verify mode still caches it: it made the access decision itself.
    static func privatised(_ reply: ServerReply) -> ServerReply {
        let control: String?
        if case .encoded(let response, _) = reply {
            control = response.cacheControl  // found when it was encoded, not on every answer
        } else {
            control = reply.head.headers.first(name: "Cache-Control")
        }
        guard let control, sharesPublicly(control) else { return reply }
        var head = reply.head
        privatise(&head.headers)
        switch reply {
        case .response(_, let body): return .response(head, body: body)
        case .fileResponse(_, let body, let written): return .fileResponse(head, body: body, written: written)
        case .sse(_, let start): return .sse(head, start: start)
        case .encoded(let response, let extra):
            // Serialized once for everyone; for this answer the head is built again.
            for (name, value) in extra.pairs { head.headers.replaceOrAdd(name: name, value: value) }
            return .response(head, body: [response.body])
        }
    }

    public let inner: any HTTPResponder
    /// Who may do what, now (replaceable on reload).
    public let policy: AuthPolicy
    public let streamPathPrefix: String
    /// The server's own endpoints, and what they need (`nil`: public).
    public let operationalPaths: Set<String>
    /// `Cache-Control: public` made `private`, with `Vary: Authorization` (see `privatised`). An
    /// edge in verify mode applies it once to what it caches, so its hits need no rewriting.
    public static func privatise(_ headers: inout HTTPHeaders) {
        guard let control = headers.first(name: "Cache-Control"), sharesPublicly(control) else { return }
        // Cut at each comma byte, as `sharesPublicly` reads the value: a comma followed by a
        // combining mark is one Character, and a Character split would keep `public` whole.
        let directives = control.utf8.split(separator: UInt8(ascii: ",")).map { bytes -> Substring in
            Self.isPublicDirective(bytes) ? "private" : Substring(bytes).trimmingASCII(" \t")
        }
        headers.replaceOrAdd(name: "Cache-Control", value: directives.joined(separator: ", "))
        headers.add(name: "Vary", value: "Authorization")
    }

    /// Whether a `Cache-Control` value has the `public` directive (case-insensitive, RFC 9111
    /// §5.2). Byte by byte: this runs on every authorised answer, and Foundation's `contains`
    /// bridged through NSString in the edge's profile.
    static func sharesPublicly(_ control: String) -> Bool {
        var control = control  // `withUTF8` may make a bridged string native; ours already are
        return control.withUTF8 { bytes in
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
                if isPublicDirective(bytes[start..<end]) { return true }
                start = end + 1
            }
            return false
        }
    }

    private static func isPublicDirective(_ directive: some Sequence<UInt8>) -> Bool {
        // Byte by byte, spaces and tabs around the name skipped: `trimmingASCII` showed in profiles.
        var matched = 0
        for byte in directive where byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") {
            guard matched < 6, byte | 0x20 == Self.publicName[matched] else { return false }
            matched += 1
        }
        return matched == 6
    }

    private static let publicName = Array("public".utf8)

    /// What an authorised read carries on to `inner`.
    public let readCredential: ReadCredential
    /// What paths that are neither streams nor the server's own endpoints need.
    public let otherPathsScope: AccessScope?

    /// What happens to the `Authorization` of a read once it is authorised.
    public enum ReadCredential: Sendable, Equatable {
        /// It stays (the origin: nothing further looks at it).
        case keep
        /// It is replaced by the credential's current value, or removed when that is `nil` (an
        /// edge that checks credentials itself: every authorised reader then shares one cache
        /// entry and one upstream request, made with the edge's own credential).
        case replace(UpstreamCredential)
    }

    /// Told of each request refused here (for metrics).
    public let onRefusal: (@Sendable (AuthRefusal) -> Void)?

    public init(
        _ inner: any HTTPResponder, policy: AuthPolicy, streamPathPrefix: String,
        operationalPaths: Set<String> = ["/metrics"], readCredential: ReadCredential = .keep, otherPathsScope: AccessScope? = nil,
        onRefusal: (@Sendable (AuthRefusal) -> Void)? = nil
    ) {
        self.onRefusal = onRefusal
        self.otherPathsScope = otherPathsScope
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

    public func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        let policy = self.policy.current
        guard policy.isEnabled else { return inner.respond(to: request, live: live, on: loop) }
        let head = request.head
        let path = RequestTarget(head.uri).path
        let requirement = AccessRequirement.of(
            method: head.method.rawValue, path: path, prefix: streamPathPrefix, operationalPaths: operationalPaths,
            operationalScope: policy.operationalScope, healthScope: policy.healthScope, otherPathsScope: otherPathsScope,
            header: { head.headers.first(name: $0) })
        guard !requirement.isPublic else { return inner.respond(to: request, live: live, on: loop) }
        let authorization = head.headers.single("Authorization")
        let presented = authorization.value
        guard authorization != .repeated else {
            return refuse(.invalid, ProtocolError(.badRequest, "more than one Authorization header"))
        }
        if let authority = policy.forwardAuthority {
            return .later(respond(to: request, requirement: requirement, authority: authority, live: live, on: loop))
        }
        guard let authenticator = policy.authenticator else { return inner.respond(to: request, live: live, on: loop) }
        if let outcome = authenticator.immediateOutcome(presented) {
            return answer(request, outcome: outcome, requirement: requirement, realm: authenticator.realm, live: live, on: loop)
        }
        return .later(authenticator.authenticate(presented, on: loop).flatMap { [self] outcome in
            answer(request, outcome: outcome, requirement: requirement, realm: authenticator.realm, live: live, on: loop).future(on: loop)
        })
    }

    /// A refusal, counted.
    func refuse(_ reason: AuthRefusal, _ error: ProtocolError) -> ResponderAnswer {
        onRefusal?(reason)
        return .now(inner.refusal(error))
    }

    /// What the authenticator's `outcome` means for `request`: a refusal, or `inner`'s answer.
    private func answer(
        _ request: ServerRequest, outcome: Authenticator.Outcome, requirement: AccessRequirement, realm: String,
        live: LiveRequest, on loop: any EventLoop
    ) -> ResponderAnswer {
        let challenge = "Bearer realm=\"\(realm)\""
        switch outcome {
        case .missing:
            return refuse(.missing, ProtocolError(
                .unauthorized, "authentication required", headers: [("WWW-Authenticate", challenge)]))
        case .busy:
            return refuse(.unavailable, ProtocolError(
                .serviceUnavailable, "too many new tokens being verified; retry shortly", headers: [("Retry-After", "1")]))
        case .otherScheme:
            // RFC 6750 §3.1: a request in another scheme gets the challenge without an error code.
            return refuse(.invalid, ProtocolError(
                .unauthorized, "Authorization must be a bearer token", headers: [("WWW-Authenticate", challenge)]))
        case .invalid(let reason):
            return refuse(.invalid, ProtocolError(
                .unauthorized, reason, headers: [("WWW-Authenticate", "\(challenge), error=\"invalid_token\"")]))
        case .principal(let principal):
            live.principal = principal.name
            guard requirement.isSatisfied(by: principal) else {
                return refuse(.forbidden, ProtocolError(
                    .forbidden, "credentials do not allow this request",
                    headers: [("WWW-Authenticate", "\(challenge), error=\"insufficient_scope\"")]))
            }
            guard case .replace(let upstream) = readCredential, request.head.method == .GET || request.head.method == .HEAD else {
                return inner.respond(to: request, live: live, on: loop).map(Self.privatised)
            }
            var authorised = request
            authorised.head.headers.remove(name: "Authorization")
            if let credential = upstream.value { authorised.head.headers.add(name: "Authorization", value: credential) }
            return inner.respond(to: authorised, live: live, on: loop).map(Self.privatised)
        }
    }
}
