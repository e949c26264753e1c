import DurableStreams
import NIOCore
import ServerSupport

extension AuthorizingResponder {
    /// The realm of the challenge sent with a 401 when the endpoint sent none.
    static let forwardAuthChallenge = "Bearer realm=\"durable-streams\""

    /// A request that needs credentials, when forward auth decides: each need of `requirement`
    /// is one check, asked in turn; the first that is not allowed answers the request.
    ///
    /// - allowed: the request goes on (its answer made private, as for any credentialed one);
    /// - 401 / 403 from the endpoint: the same status, with the endpoint's `WWW-Authenticate`
    ///   (a 401 without one gets `Bearer realm="durable-streams"`);
    /// - no decision (failure, or too many checks in flight): 503 with `Retry-After: 1`.
    ///
    /// Nothing refused reaches `inner`.
    func respond(
        to request: ServerRequest, requirement: AccessRequirement, authority: ForwardAuthority, live: LiveRequest,
        on loop: any EventLoop
    ) -> EventLoopFuture<ServerReply> {
        let checks = ForwardAuthCheck.checks(for: requirement, head: request.head)
        // Responders are called on the request's loop, and the decision arrives on it too.
        let live = NIOLoopBound(live, eventLoop: loop)
        let presented = request.head.headers.contains(name: "Authorization")
        return Self.decide(checks[...], by: authority, on: loop).flatMap { [self] decision in
            switch decision {
            case .allowed:
                return inner.respond(to: request, live: live.value, on: loop).map(Self.privatised).future(on: loop)
            case .refused(let unauthorized, let challenges):
                var headers = challenges.map { ("WWW-Authenticate", $0) }
                if unauthorized && headers.isEmpty { headers = [("WWW-Authenticate", Self.forwardAuthChallenge)] }
                let error =
                    unauthorized
                    ? ProtocolError(.unauthorized, "the authorization service did not accept the credentials", headers: headers)
                    : ProtocolError(.forbidden, "the authorization service does not allow this request", headers: headers)
                return refuse(unauthorized ? (presented ? .invalid : .missing) : .forbidden, error).future(on: loop)
            case .failed(let reason):
                return refuse(.unavailable, ProtocolError(
                    .serviceUnavailable, "\(reason); retry shortly", headers: [("Retry-After", "1")])).future(on: loop)
            case .busy:
                return refuse(.unavailable, ProtocolError(
                    .serviceUnavailable, "too many authorization checks in progress; retry shortly", headers: [("Retry-After", "1")])).future(on: loop)
            }
        }
    }

    /// The first decision among `checks` that is not `.allowed`, or `.allowed`. One at a time:
    /// a fork's second check is not asked when its first is refused.
    static func decide(
        _ checks: ArraySlice<ForwardAuthCheck>, by authority: ForwardAuthority, on loop: any EventLoop
    ) -> EventLoopFuture<ForwardAuthDecision> {
        guard let first = checks.first else { return loop.makeSucceededFuture(.allowed) }
        return authority.decide(first, on: loop).flatMap { decision in
            guard decision == .allowed else { return loop.makeSucceededFuture(decision) }
            return decide(checks.dropFirst(), by: authority, on: loop)
        }
    }
}
