import Crypto
import Foundation

/// The server's webhook signing keys (§6.5, §7.1): Ed25519, published as a JWK set; the
/// newest signs. Older keys stay published so that deliveries they signed still verify
/// through a receiver's replay window.
public struct WebhookSigner: Sendable {
    public struct Key: Sendable {
        public let privateKey: Curve25519.Signing.PrivateKey
        /// `ds_` and the RFC 7638 thumbprint of the public key: stable for the key's life and
        /// unique within the set because it derives from the key itself.
        public let kid: String

        public init(_ privateKey: Curve25519.Signing.PrivateKey) {
            self.privateKey = privateKey
            self.kid = "ds_" + Self.thumbprint(privateKey.publicKey)
        }

        /// The thumbprint's input is the required members of the OKP key in lexicographic
        /// order, without whitespace.
        static func thumbprint(_ key: Curve25519.Signing.PublicKey) -> String {
            let canonical = #"{"crv":"Ed25519","kty":"OKP","x":"\#(Base64URL.encode(key.rawRepresentation))"}"#
            return Base64URL.encode(SHA256.hash(data: Array(canonical.utf8)))
        }

        var jwk: [String: String] {
            ["kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA", "x": Base64URL.encode(privateKey.publicKey.rawRepresentation)]
        }
    }

    /// The signing key first, then retired keys still published.
    public let keys: [Key]

    public init(keys: [Key]) {
        precondition(!keys.isEmpty, "a signer needs a key")
        self.keys = keys
    }

    public var current: Key { keys[0] }

    /// `Webhook-Signature: t=<unix seconds>,kid=<kid>,ed25519=<base64url signature>` over
    /// `<t>.<body>`.
    public func signatureHeader(body: [UInt8], unixSeconds: Int64) throws -> String {
        var signed = Array("\(unixSeconds).".utf8)
        signed += body
        let signature = try current.privateKey.signature(for: signed)
        return "t=\(unixSeconds),kid=\(current.kid),ed25519=\(Base64URL.encode(signature))"
    }

    /// The JWK set body (`application/jwk-set+json`).
    public var jwks: [UInt8] {
        let object: [String: Any] = ["keys": keys.map(\.jwk)]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// Verifies a signature header against this set, as a receiver would (tests, examples).
    public func verify(header: String, body: [UInt8]) -> Bool {
        var fields: [Substring: Substring] = [:]
        for part in header.split(separator: ",") {
            guard let equals = part.firstIndex(of: "=") else { return false }
            fields[part[..<equals]] = part[part.index(after: equals)...]
        }
        guard let t = fields["t"], let kid = fields["kid"], let encoded = fields["ed25519"],
            let signature = Base64URL.decode(String(encoded)),
            let key = keys.first(where: { $0.kid == kid })
        else { return false }
        return key.privateKey.publicKey.isValidSignature(signature, for: Array("\(t).".utf8) + body)
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWKs and the signature header use it.
public enum Base64URL {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.count <= 65_536 else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }
}
