import NIOConcurrencyHelpers
import NIOCore

/// Who a request's `Authorization` header says made it: an API key's owner or a verified JWT's
/// subject. Keys and tokens verified before answer without waiting; a new token is verified
/// off the event loop.
public final class Authenticator: Sendable {
    public let apiKeys: APIKeys?
    public let jwt: JWTAuthority?
    /// The realm named in `WWW-Authenticate`.
    public let realm: String
    /// New tokens being verified at once, at most: each costs a signature check, and a client
    /// sending fresh junk tokens must not be able to queue them without end.
    public let maxVerificationsInFlight: Int
    private let inFlight = NIOLockedValueBox(0)

    public init(apiKeys: APIKeys?, jwt: JWTAuthority?, realm: String = "durable-streams", maxVerificationsInFlight: Int = 64) {
        self.apiKeys = apiKeys
        self.jwt = jwt
        self.realm = realm
        self.maxVerificationsInFlight = maxVerificationsInFlight
    }

    public enum Outcome: Equatable, Sendable {
        case principal(Principal)
        /// No credentials were sent.
        case missing
        /// Credentials in a scheme other than Bearer.
        case otherScheme
        /// Credentials were sent and are not accepted, for this reason.
        case invalid(String)
        /// Too many new tokens are being verified: try again shortly (503).
        case busy
    }

    /// The outcome for `header` when it can be decided without waiting: no credentials, another
    /// scheme, an API key, or a token verified before. `nil`: a new token, to `authenticate`.
    /// The common case (a reader polling with its token) thus costs no future on the hot path.
    public func immediateOutcome(_ header: String?) -> Outcome? {
        guard let header else { return .missing }
        guard let credential = BearerCredential(header: header) else { return .otherScheme }
        switch credential {
        case .apiKey(let key):
            return apiKeys?.principal(forKey: key).map(Outcome.principal) ?? .invalid("unknown API key")
        case .jwt(let token):
            // An API key may look like a token, so keys are tried before a new token is verified.
            if let principal = jwt?.cached(token) { return .principal(principal) }
            if let principal = apiKeys?.principal(forKey: token) { return .principal(principal) }
            return jwt == nil ? .invalid("unknown API key") : nil
        }
    }

    public func authenticate(_ header: String?, on loop: any EventLoop) -> EventLoopFuture<Outcome> {
        if let outcome = immediateOutcome(header) { return loop.makeSucceededFuture(outcome) }
        // immediateOutcome decides everything but a JWT the authority has not verified yet.
        guard let header, case .jwt(let token)? = BearerCredential(header: header), let jwt else {
            return loop.makeSucceededFuture(.invalid("token could not be verified"))
        }
        let admitted = inFlight.withLockedValue { count -> Bool in
            guard count < maxVerificationsInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else { return loop.makeSucceededFuture(.busy) }
        let promise = loop.makePromise(of: Outcome.self)
        promise.completeWithTask { [inFlight] in
            defer { inFlight.withLockedValue { $0 -= 1 } }
            switch await jwt.verify(token) {
            case .success(let principal): return .principal(principal)
            case .failure(let failure): return .invalid(failure.reason)
            }
        }
        return promise.futureResult
    }
}
