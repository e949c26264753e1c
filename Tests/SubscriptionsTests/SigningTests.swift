import Crypto
import Foundation
import Subscriptions
import Testing

@Suite("Subscriptions: webhook signatures and callback tokens")
struct SigningTests {
    @Test func aSignatureVerifiesAgainstThePublishedKeySet() throws {
        let signer = WebhookSigner(keys: [.init(Curve25519.Signing.PrivateKey())])
        let body = Array(#"{"subscription_id":"s"}"#.utf8)
        let header = try signer.signatureHeader(body: body, unixSeconds: 1_778_324_210)
        #expect(header.wholeMatch(of: /t=1778324210,kid=ds_[A-Za-z0-9_-]+,ed25519=[A-Za-z0-9_-]+/) != nil)

        // As a receiver does it: the key from the JWK set by kid, the signature over `t.body`.
        let set = try JSONSerialization.jsonObject(with: Data(signer.jwks)) as? [String: Any]
        let keys = try #require(set?["keys"] as? [[String: String]])
        let kid = try #require(header.split(separator: ",")[1].split(separator: "=").last).description
        let jwk = try #require(keys.first { $0["kid"] == kid })
        #expect(jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519" && jwk["alg"] == "EdDSA" && jwk["use"] == "sig")
        let x = try #require(jwk["x"])
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Base64URL.decode(x)))
        let encoded = try #require(header.split(separator: "=").last)
        let signature = try #require(Base64URL.decode(String(encoded)))
        #expect(publicKey.isValidSignature(signature, for: Array("1778324210.".utf8) + body))
        #expect(!publicKey.isValidSignature(signature, for: Array("1778324211.".utf8) + body))
        #expect(signer.verify(header: header, body: body))
        #expect(!signer.verify(header: header, body: body + [0x20]))
    }

    @Test func theKidDerivesFromTheKeyAndRetiredKeysStayPublished() throws {
        let old = Curve25519.Signing.PrivateKey()
        let again = try Curve25519.Signing.PrivateKey(rawRepresentation: old.rawRepresentation)
        #expect(WebhookSigner.Key(old).kid == WebhookSigner.Key(again).kid)
        let new = Curve25519.Signing.PrivateKey()
        let rotated = WebhookSigner(keys: [.init(new), .init(old)])
        #expect(rotated.current.kid != WebhookSigner.Key(old).kid)
        let oldHeader = try WebhookSigner(keys: [.init(old)]).signatureHeader(body: [1, 2], unixSeconds: 5)
        #expect(rotated.verify(header: oldHeader, body: [1, 2]))
    }

    @Test func tokensCarryTheirClaimsAndRefuseForgeriesAndExpiry() throws {
        let tokens = CallbackTokens(secret: Array(repeating: 7, count: 32))
        let claims = CallbackTokens.Claims(subscription: "sub-1", incarnation: "abc", generation: 7, wakeID: "w_abc_7", expires: 1_000)
        let token = tokens.make(claims)
        #expect(try tokens.verify(token, nowSeconds: 999) == claims)
        do {
            _ = try tokens.verify(token, nowSeconds: 1_000)
            Issue.record("expired")
        } catch {
            #expect(error.code == "TOKEN_EXPIRED" && error.status == 401)
        }
        let other = CallbackTokens(secret: Array(repeating: 8, count: 32))
        for forged in [other.make(claims), String(token.dropLast()), token + "x", "", "dst1..", "Bearer", String(repeating: "a", count: 10_000)] {
            do {
                _ = try tokens.verify(forged, nowSeconds: 0)
                Issue.record("accepted \(forged.prefix(40))")
            } catch {
                #expect(error.code == "TOKEN_INVALID")
            }
        }
    }
}

@Suite("Subscriptions: keys kept in a directory")
struct SubscriptionKeysTests {
    @Test func keysPersistRotateAndRetiredOnesStayPublishedForTheWindow() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try SubscriptionKeys.load(directory: directory, now: start)
        let again = try SubscriptionKeys.load(directory: directory, now: start)
        #expect(again.signer.current.kid == first.signer.current.kid)
        #expect(again.tokenSecret == first.tokenSecret)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/webhook-signing.key")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let signedBefore = try first.signer.signatureHeader(body: [1], unixSeconds: 1_800_000_000)
        try SubscriptionKeys.rotate(directory: directory, now: start)
        let rotated = try SubscriptionKeys.load(directory: directory, now: start.addingTimeInterval(60))
        #expect(rotated.signer.current.kid != first.signer.current.kid)
        #expect(rotated.signer.keys.map(\.kid).contains(first.signer.current.kid))
        #expect(rotated.signer.verify(header: signedBefore, body: [1]), "a delivery signed before the rotation still verifies")
        #expect(rotated.tokenSecret == first.tokenSecret)

        let later = try SubscriptionKeys.load(directory: directory, now: start.addingTimeInterval(SubscriptionKeys.retiredKeyWindow + 1))
        #expect(later.signer.keys.map(\.kid) == [rotated.signer.current.kid], "retired past the window: gone")
    }
}
