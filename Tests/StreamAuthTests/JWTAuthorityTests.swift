import Crypto
import DurableStreams
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import NIOPosix
import ServerSupport
import Testing
@testable import StreamAuth

/// Key files and signed tokens made in the test, in a temporary directory.
struct TokenFixture {
    let directory: String
    let secretPath: String
    let es256PublicPath: String
    let signer = JWTKeyCollection()
    let ecSigner = JWTKeyCollection()
    static let secret = "an-hs256-secret-of-at-least-32-bytes!!"

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        secretPath = directory + "/jwt.secret"
        try (Self.secret + "\n").write(toFile: secretPath, atomically: true, encoding: .utf8)
        let ecKey = P256.Signing.PrivateKey()
        es256PublicPath = directory + "/es256.pem"
        try ecKey.publicKey.pemRepresentation.write(toFile: es256PublicPath, atomically: true, encoding: .utf8)
        await signer.add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        await ecSigner.add(ecdsa: try ES256PrivateKey(pem: ecKey.pemRepresentation))
    }

    func token(scope: String?, expires: Date? = Date().addingTimeInterval(3600), notBefore: Date? = nil,
               issuer: String? = nil, audience: String? = nil, subject: String = "alice", ec: Bool = false) async throws -> String
    {
        let claims = StreamTokenClaims(
            sub: SubjectClaim(value: subject), exp: expires.map { ExpirationClaim(value: $0) },
            nbf: notBefore.map { NotBeforeClaim(value: $0) }, iss: issuer.map { IssuerClaim(value: $0) },
            aud: audience.map { AudienceClaim(value: [$0]) }, scope: scope)
        return try await (ec ? ecSigner : signer).sign(claims)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite("JWT bearer tokens")
struct JWTAuthorityTests {
    @Test func aValidTokenGrantsItsScopes() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath))
        let token = try await fixture.token(scope: "read:chat/ write:chat/mine/")
        let principal = try await authority.verify(Substring(token)).get()
        #expect(principal.name == "alice")
        #expect(principal.grants == [Grant(.read, prefix: "chat/"), Grant(.write, prefix: "chat/mine/")])
        // Verified once, then known without waiting.
        #expect(authority.cached(Substring(token)) == principal)
    }

    @Test func es256KeysVerifyTokensSignedWithTheirPrivateKey() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authority = try await JWTAuthority.load(.init(es256PublicKey: fixture.es256PublicPath))
        let good = try await fixture.token(scope: "read", ec: true)
        #expect((try? await authority.verify(Substring(good)).get())?.grants == [Grant(.read)])
        // A token signed with another key (the HS256 secret) is refused.
        let other = try await fixture.token(scope: "read")
        await #expect(throws: AuthFailure.self) { try await authority.verify(Substring(other)).get() }
    }

    @Test func expiredNotYetValidAndForgedTokensAreRefused() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath))
        let expired = try await fixture.token(scope: "read", expires: Date().addingTimeInterval(-60))
        #expect(await authority.verify(Substring(expired)) == .failure(AuthFailure("token is expired or not yet valid")))
        let early = try await fixture.token(scope: "read", notBefore: Date().addingTimeInterval(600))
        #expect(await authority.verify(Substring(early)) == .failure(AuthFailure("token is expired or not yet valid")))
        let valid = try await fixture.token(scope: "admin")
        var parts = valid.split(separator: ".").map(String.init)
        parts[2] = String(parts[2].reversed())
        let forged = parts.joined(separator: ".")
        await #expect(throws: AuthFailure.self) { try await authority.verify(Substring(forged)).get() }
        await #expect(throws: AuthFailure.self) { try await authority.verify("not.a.token").get() }
    }

    // A token without an expiry would be good forever once leaked: refused.
    @Test func aTokenWithoutExpiryIsRefused() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath))
        let forever = try await fixture.token(scope: "read", expires: nil)
        #expect(await authority.verify(Substring(forever)) == .failure(AuthFailure("token has no expiry (exp)")))
    }

    // Tokens name no key, so one key type only: two would silently leave one of them unused.
    @Test func twoKeyTypesAreAConfigurationError() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        await #expect(throws: AuthConfigurationError.self) {
            try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath, es256PublicKey: fixture.es256PublicPath))
        }
    }

    @Test func issuerAndAudienceAreEnforcedWhenConfigured() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath), issuer: "https://auth.test/", audience: "ds")
        let right = try await fixture.token(scope: "read", issuer: "https://auth.test/", audience: "ds")
        #expect((try? await authority.verify(Substring(right)).get()) != nil)
        let wrongIssuer = try await fixture.token(scope: "read", issuer: "https://evil.test/", audience: "ds")
        #expect(await authority.verify(Substring(wrongIssuer)) == .failure(AuthFailure("token issuer is not accepted")))
        let noAudience = try await fixture.token(scope: "read", issuer: "https://auth.test/")
        #expect(await authority.verify(Substring(noAudience)) == .failure(AuthFailure("token audience is not accepted")))
    }

    @Test func aCachedTokenIsDroppedWhenItExpires() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let now = NIOLockedValueBoxClock(Date().timeIntervalSince1970)
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath), clock: { now.value })
        let token = try await fixture.token(scope: "read", expires: Date().addingTimeInterval(120))
        _ = try await authority.verify(Substring(token)).get()
        #expect(authority.cached(Substring(token)) != nil)
        now.value += 121
        #expect(authority.cached(Substring(token)) == nil)
    }

    @Test func keyFilesThatCannotWorkAreRefusedAtLoad() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let short = fixture.directory + "/short.secret"
        try "too-short".write(toFile: short, atomically: true, encoding: .utf8)
        await #expect(throws: AuthConfigurationError.self) { try await JWTAuthority.load(.init(hs256Secret: short)) }
        await #expect(throws: AuthConfigurationError.self) { try await JWTAuthority.load(.init(hs256Secret: fixture.directory + "/missing")) }
        await #expect(throws: AuthConfigurationError.self) { try await JWTAuthority.load(.init(es256PublicKey: fixture.secretPath)) }
        await #expect(throws: AuthConfigurationError.self) { try await JWTAuthority.load(.init()) }
    }

    @Test func theAuthenticatorTriesKeysThenTokens() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let keys = try APIKeys(toml: "[[key]]\nname = \"ci\"\nsecret = \"ci-key-0123456789\"\nscope = \"write\"")
        let authenticator = Authenticator(apiKeys: keys, jwt: try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath)))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        func outcome(_ header: String?) async throws -> Authenticator.Outcome {
            try await authenticator.authenticate(header, on: loop).get()
        }
        #expect(try await outcome(nil) == .missing)
        #expect(try await outcome("Basic abc") == .otherScheme)
        #expect(try await outcome("Bearer nope") == .invalid("unknown API key"))
        #expect(try await outcome("Bearer ci-key-0123456789") == .principal(Principal(name: "ci", grants: [Grant(.write)])))
        let token = try await fixture.token(scope: "read:x/")
        guard case .principal(let principal) = try await outcome("Bearer \(token)") else {
            Issue.record("a valid token was not accepted")
            return
        }
        #expect(principal.grants == [Grant(.read, prefix: "x/")])
    }
}

/// A settable clock for the token cache.
final class NIOLockedValueBoxClock: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Double
    init(_ value: Double) { stored = value }
    var value: Double {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

@Suite("Bounds on token verification")
struct TokenBoundsTests {
    // New tokens beyond the verifications allowed in flight are turned away (503), not queued.
    @Test func verificationsInFlightAreBounded() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let authenticator = Authenticator(
            apiKeys: nil, jwt: try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath)), maxVerificationsInFlight: 0)
        let token = try await fixture.token(scope: "read")
        let outcome = try await authenticator.authenticate("Bearer \(token)", on: MultiThreadedEventLoopGroup.singleton.next()).get()
        #expect(outcome == .busy)
        let responder = AuthorizingResponder(
            RecordingResponder(), policy: AuthPolicy(.init(authenticator: authenticator, operationalScope: nil)),
            streamPathPrefix: "/v1/stream/")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let reply = try await responder.respond(
            to: ServerRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/stream/a", headers: ["Authorization": "Bearer \(token)"]), body: ByteBuffer()),
            live: LiveRequest(), on: loop).future(on: loop).get()
        #expect(reply.status == .serviceUnavailable)
        #expect(reply.head.headers.first(name: "Retry-After") == "1")
    }

    // A full token cache drops expired tokens first, keeping the live ones.
    @Test func aFullCacheDropsExpiredTokensFirst() async throws {
        let fixture = try await TokenFixture()
        defer { fixture.remove() }
        let now = NIOLockedValueBoxClock(Date().timeIntervalSince1970)
        let authority = try await JWTAuthority.load(.init(hs256Secret: fixture.secretPath), cacheCapacity: 2, clock: { now.value })
        let first = try await fixture.token(scope: "read", subject: "first")
        _ = try await authority.verify(Substring(first)).get()
        now.value += 200
        let second = try await fixture.token(scope: "read", subject: "second")
        _ = try await authority.verify(Substring(second)).get()
        now.value += 150  // the first is past the 300 s it is remembered; the second is not
        let third = try await fixture.token(scope: "read", subject: "third")
        _ = try await authority.verify(Substring(third)).get()
        #expect(authority.cached(Substring(second)) != nil)
        #expect(authority.cached(Substring(third)) != nil)
    }
}

/// An inner responder that answers 200 to everything.
struct RecordingResponder: HTTPResponder {
    var maxBodyBytes: Int { 1 << 20 }
    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        .now(.response(HTTPResponseHead(version: .http1_1, status: .ok), body: []))
    }
    func refusal(_ error: ProtocolError) -> ServerReply {
        var headers = HTTPHeaders()
        for (name, value) in error.headers { headers.add(name: name, value: value) }
        return .response(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: error.status.rawValue), headers: headers), body: [])
    }
    func connectionOpened() {}
    func connectionClosed() {}
}
