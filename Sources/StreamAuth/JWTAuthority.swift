import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// Verifies JWT bearer tokens with the keys an operator configured (HS256 secret, ES256 or
/// RS256 public keys, each from a file) and turns their claims into a `Principal`.
///
/// Verified tokens are kept (at most `cacheCapacity`, until they expire and at most five
/// minutes): a reader polling with one token is checked once, not once per request.
public final class JWTAuthority: Sendable {
    /// The key files to load; at least one.
    public struct KeyFiles: Sendable, Equatable {
        public var hs256Secret: String?
        public var es256PublicKey: String?
        public var rs256PublicKey: String?

        public init(hs256Secret: String? = nil, es256PublicKey: String? = nil, rs256PublicKey: String? = nil) {
            self.hs256Secret = hs256Secret
            self.es256PublicKey = es256PublicKey
            self.rs256PublicKey = rs256PublicKey
        }

        public var isEmpty: Bool { hs256Secret == nil && es256PublicKey == nil && rs256PublicKey == nil }
    }

    private let keys: JWTKeyCollection
    /// Required `iss` and `aud`, when set.
    public let issuer: String?
    public let audience: String?
    private let clock: @Sendable () -> Double
    /// Keyed by the token as it arrived (a slice of the header), so a lookup allocates nothing.
    private let verified = NIOLockedValueBox<[Substring: Principal]>([:])
    private let cacheCapacity: Int
    static let cacheSeconds = 300.0

    init(keys: JWTKeyCollection, issuer: String?, audience: String?, cacheCapacity: Int, clock: @escaping @Sendable () -> Double) {
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.cacheCapacity = cacheCapacity
        self.clock = clock
    }

    /// Loads the keys. Reads files: at start-up or reload, not on an event loop.
    public static func load(
        _ files: KeyFiles, issuer: String? = nil, audience: String? = nil, cacheCapacity: Int = 10_000,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws(AuthConfigurationError) -> JWTAuthority {
        guard !files.isEmpty else { throw AuthConfigurationError("JWT authentication needs at least one key file") }
        // Tokens name no key (kid), so the collection has one default key: a second would
        // silently replace the first.
        guard [files.hs256Secret, files.es256PublicKey, files.rs256PublicKey].count(where: { $0 != nil }) == 1 else {
            throw AuthConfigurationError("set one of jwt_hs256_secret_file, jwt_es256_public_key_file, jwt_rs256_public_key_file")
        }
        let keys = JWTKeyCollection()
        do {
            if let path = files.hs256Secret {
                let secret = try read(path).trimmingCharacters(in: .whitespacesAndNewlines)
                guard secret.utf8.count >= 32 else {
                    throw AuthConfigurationError("HS256 secret in \(path) must be at least 32 bytes")
                }
                await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            }
            if let path = files.es256PublicKey {
                await keys.add(ecdsa: try ES256PublicKey(pem: try read(path)))
            }
            if let path = files.rs256PublicKey {
                await keys.add(rsa: try Insecure.RSA.PublicKey(pem: try read(path)), digestAlgorithm: .sha256)
            }
        } catch let error as AuthConfigurationError {
            throw error
        } catch {
            throw AuthConfigurationError("cannot load a JWT key: \(error)")
        }
        return JWTAuthority(keys: keys, issuer: issuer, audience: audience, cacheCapacity: cacheCapacity, clock: clock)
    }

    private static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AuthConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// The principal of a token verified before and still valid, without waiting.
    public func cached(_ token: Substring) -> Principal? {
        let now = clock()
        return verified.withLockedValue { cache in
            guard let principal = cache[token] else { return nil }
            if let expiry = principal.expiresAt, now >= expiry {
                cache[token] = nil
                return nil
            }
            return principal
        }
    }

    /// Verifies a token: signature, `exp`, `nbf`, and `iss`/`aud` when required.
    public func verify(_ token: Substring) async -> Result<Principal, AuthFailure> {
        if let principal = cached(token) { return .success(principal) }
        let claims: StreamTokenClaims
        do {
            claims = try await keys.verify(String(token), as: StreamTokenClaims.self)
        } catch let error as JWTError {
            return .failure(AuthFailure(Self.describe(error)))
        } catch {
            return .failure(AuthFailure("token could not be verified"))
        }
        // A token without an expiry would be good forever once leaked.
        guard let expiry = claims.exp else { return .failure(AuthFailure("token has no expiry (exp)")) }
        if let issuer, claims.iss?.value != issuer { return .failure(AuthFailure("token issuer is not accepted")) }
        if let audience {
            guard let claimed = claims.aud, (try? claimed.verifyIntendedAudience(includes: audience)) != nil else {
                return .failure(AuthFailure("token audience is not accepted"))
            }
        }
        let now = clock()
        let keepUntil = min(expiry.value.timeIntervalSince1970, now + Self.cacheSeconds)
        let principal = Principal(
            name: claims.sub?.value ?? "token", grants: TokenScopes.grants(claims.scope ?? ""), expiresAt: keepUntil)
        verified.withLockedValue { cache in
            if cache.count >= cacheCapacity {
                // Expired tokens go first; only a cache full of live ones starts over.
                cache = cache.filter { ($0.value.expiresAt ?? .infinity) > now }
                if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
            }
            // A copy of its own: a slice would keep the whole request header alive.
            cache[Substring(String(token))] = principal
        }
        return .success(principal)
    }

    /// Short, stable reasons: they reach the client in `WWW-Authenticate` and the body.
    private static func describe(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure: return "token is expired or not yet valid"
        case .signatureVerificationFailed: return "token signature is not valid"
        case .unknownKID, .missingKIDHeader: return "token is signed with an unknown key"
        case .malformedToken: return "token is malformed"
        default: return "token could not be verified"
        }
    }
}

/// The claims this server reads from a token.
struct StreamTokenClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var scope: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp?.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }
}

/// Why credentials were not accepted (the request gets 401).
public struct AuthFailure: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}
