import Crypto
import Foundation

/// Callback and claim tokens (§7.1, §12.9): what a token holder may do is fixed by the server
/// and signed with HMAC-SHA256 under a server secret, so nobody can mint one and the server
/// keeps no table of tokens. The state machine still fences each use by generation and wake.
///
/// Form: `dst1.<base64url payload>.<base64url MAC>`; the payload is
/// `<subscription>\n<incarnation>\n<generation>\n<wake id>\n<expiry unix seconds>`.
public struct CallbackTokens: Sendable {
    public struct Claims: Sendable, Equatable {
        public var subscription: String
        /// Which creation of the subscription: a token for a deleted one never fits its successor.
        public var incarnation: String
        public var generation: Int
        public var wakeID: String
        public var expires: Int64

        public init(subscription: String, incarnation: String, generation: Int, wakeID: String, expires: Int64) {
            self.subscription = subscription
            self.incarnation = incarnation
            self.generation = generation
            self.wakeID = wakeID
            self.expires = expires
        }
    }

    /// How long a token is honoured at most; fencing ends it sooner.
    public static let lifetimeSeconds: Int64 = 24 * 3600
    static let prefix = "dst1."

    let key: SymmetricKey

    public init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    public func make(_ claims: Claims) -> String {
        let payload = [claims.subscription, claims.incarnation, String(claims.generation), claims.wakeID, String(claims.expires)].joined(separator: "\n")
        let bytes = Array(payload.utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: bytes, using: key)
        return Self.prefix + Base64URL.encode(bytes) + "." + Base64URL.encode(mac)
    }

    /// The claims of a token this server made and that has not expired.
    public func verify(_ token: String, nowSeconds: Int64) throws(SubscriptionError) -> Claims {
        guard token.utf8.count <= 4096, token.hasPrefix(Self.prefix) else { throw Self.invalid }
        let parts = token.dropFirst(Self.prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Base64URL.decode(String(parts[0])), let mac = Base64URL.decode(String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key)
        else { throw Self.invalid }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, let generation = Int(fields[2]), let expires = Int64(fields[4]) else { throw Self.invalid }
        guard expires > nowSeconds else {
            throw SubscriptionError(status: 401, code: "TOKEN_EXPIRED", "the token has expired")
        }
        return Claims(subscription: fields[0], incarnation: fields[1], generation: generation, wakeID: fields[3], expires: expires)
    }

    static let invalid = SubscriptionError(status: 401, code: "TOKEN_INVALID", "the bearer token is not valid for this subscription")
}
