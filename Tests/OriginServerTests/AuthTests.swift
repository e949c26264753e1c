import Foundation
import JWTKit
import StreamAuth
import Testing
import TestSupport

/// Key files for an origin with authentication, in a temporary directory.
private struct AuthFiles {
    let directory: String
    let keysPath: String
    let secretPath: String
    static let secret = "origin-test-hs256-secret-0123456789abcdef"
    static let reader = "reader-key-0123456789"
    static let writer = "writer-key-0123456789"
    static let admin = "admin-key-0123456789ab"

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-origin-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        keysPath = directory + "/keys.toml"
        secretPath = directory + "/jwt.secret"
        try """
            [[key]]
            name = "reader"
            sha256 = "\(APIKeys.digest(Self.reader))"
            scope = "read"
            prefix = "pub/"

            [[key]]
            name = "writer"
            secret = "\(Self.writer)"
            scope = "write"
            prefix = "pub/"

            [[key]]
            name = "admin"
            secret = "\(Self.admin)"
            scope = "admin"
            """.write(toFile: keysPath, atomically: true, encoding: .utf8)
        try Self.secret.write(toFile: secretPath, atomically: true, encoding: .utf8)
    }

    var settings: AuthSettings {
        var settings = AuthSettings()
        settings.apiKeysFile = keysPath
        settings.jwtKeys.hs256Secret = secretPath
        return settings
    }

    func token(scope: String, expiresIn seconds: Double = 3600, secret: String = AuthFiles.secret) async throws -> String {
        struct Claims: JWTPayload {
            var sub: SubjectClaim
            var exp: ExpirationClaim
            var scope: String
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(Claims(
            sub: SubjectClaim(value: "tester"), exp: ExpirationClaim(value: Date().addingTimeInterval(seconds)), scope: scope))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

private func bearer(_ credential: String) -> [(String, String)] { [("Authorization", "Bearer \(credential)")] }

/// The origin's count of requests refused by authentication for `reason`.
private func refusals(_ origin: Origin, _ reason: String) -> Int {
    let line = origin.server.metrics.registry.emitToString().split(separator: "\n")
        .first { $0.hasPrefix("ds_origin_auth_refusals_total{reason=\"\(reason)\"}") }
    return line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? -1
}

@Suite("Authentication on the origin")
struct AuthTests {
    // Without credentials a protected request is 401 with a Bearer challenge, and changes nothing.
    @Test func noCredentialsIsAChallengedUnauthorized() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let put = try await origin.request(.PUT, "/v1/stream/pub/a", headers: [("Content-Type", "text/plain")])
            #expect(put.status == 401)
            #expect(put.header("WWW-Authenticate") == "Bearer realm=\"durable-streams\"")
            #expect(try await origin.request(.HEAD, "/v1/stream/pub/a", headers: bearer(AuthFiles.admin)).status == 404)
            #expect(try await origin.request(.GET, "/v1/stream/pub/a?offset=-1").status == 401)
            #expect(refusals(origin, "missing") == 2)
            #expect(refusals(origin, "invalid") == 0)
        }
    }

    // Unknown keys, malformed headers and repeated headers never get through.
    @Test func badCredentialsAreRefused() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let unknown = try await origin.request(.GET, "/v1/stream/pub/a", headers: bearer("no-such-key-0000"))
            #expect(unknown.status == 401)
            #expect(unknown.header("WWW-Authenticate")?.contains("error=\"invalid_token\"") == true)
            #expect(try await origin.request(.GET, "/v1/stream/pub/a", headers: [("Authorization", "Basic YTpi")]).status == 401)
            let twice = try await origin.request(
                .GET, "/v1/stream/pub/a", headers: bearer(AuthFiles.admin) + bearer(AuthFiles.reader))
            #expect(twice.status == 400)
            // Through an edge, the repeated header is refused there and never reaches the origin.
            #expect(refusals(origin, "invalid") == (Topology.throughEdge ? 2 : 3))
            #expect(refusals(origin, "missing") == 0)
        }
    }

    // Each key works within its scope and prefix and gets 403 outside them.
    @Test func keysAreHeldToTheirScopeAndPrefix() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let path = "/v1/stream/pub/k-\(UInt32.random(in: 0...UInt32.max))"
            let created = try await origin.request(.PUT, path, headers: bearer(AuthFiles.writer) + [("Content-Type", "text/plain")])
            #expect(created.status == 201)
            #expect(try await origin.request(.POST, path, headers: bearer(AuthFiles.writer) + [("Content-Type", "text/plain")], text: "hi").status == 204)
            let read = try await origin.request(.GET, path + "?offset=-1", headers: bearer(AuthFiles.reader))
            #expect(read.status == 200 && read.text == "hi")
            // An answer given on credentials is for that requester only: no shared cache may keep it.
            #expect(read.header("Cache-Control")?.hasPrefix("private") == true)
            #expect(read.header("Cache-Control")?.contains("public") == false)
            #expect(read.headers["Vary"].contains { $0.contains("Authorization") })
            let denied = try await origin.request(.POST, path, headers: bearer(AuthFiles.reader) + [("Content-Type", "text/plain")], text: "x")
            #expect(denied.status == 403)
            #expect(denied.header("WWW-Authenticate")?.contains("insufficient_scope") == true)
            #expect(try await origin.request(.DELETE, path, headers: bearer(AuthFiles.writer)).status == 403)
            #expect(try await origin.request(.GET, "/v1/stream/private/x?offset=-1", headers: bearer(AuthFiles.reader)).status == 403)
            #expect(try await origin.request(.PUT, "/v1/stream/private/x", headers: bearer(AuthFiles.writer)).status == 403)
            #expect(refusals(origin, "forbidden") == 4)
            // Nothing refused changed the stream.
            #expect(try await origin.request(.GET, path + "?offset=-1", headers: bearer(AuthFiles.admin)).text == "hi")
            #expect(try await origin.request(.DELETE, path, headers: bearer(AuthFiles.admin)).status == 204)
        }
    }

    // A fork reads its source, so making one needs read access to the source as well.
    @Test func forkingNeedsReadOnTheSource() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let id = UInt32.random(in: 0...UInt32.max)
            #expect(try await origin.request(.PUT, "/v1/stream/secret/\(id)", headers: bearer(AuthFiles.admin) + [("Content-Type", "text/plain")], text: "s").status == 201)
            let fork = try await origin.request(
                .PUT, "/v1/stream/pub/f-\(id)", headers: bearer(AuthFiles.writer) + [("Stream-Forked-From", "/v1/stream/secret/\(id)")])
            #expect(fork.status == 403)
            let token = try await files.token(scope: "write:pub/ read:secret/")
            let allowed = try await origin.request(
                .PUT, "/v1/stream/pub/f-\(id)", headers: bearer(token) + [("Stream-Forked-From", "/v1/stream/secret/\(id)")])
            #expect(allowed.status == 201)
        }
    }

    // JWTs grant what their scope claim says, until they expire; a token signed with another key is refused.
    @Test func tokensGrantTheirScopesUntilTheyExpire() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let path = "/v1/stream/pub/t-\(UInt32.random(in: 0...UInt32.max))"
            let writer = try await files.token(scope: "write:pub/")
            #expect(try await origin.request(.PUT, path, headers: bearer(writer) + [("Content-Type", "text/plain")], text: "j").status == 201)
            let reader = try await files.token(scope: "read:pub/")
            #expect(try await origin.request(.GET, path + "?offset=-1", headers: bearer(reader)).text == "j")
            #expect(try await origin.request(.POST, path, headers: bearer(reader) + [("Content-Type", "text/plain")], text: "x").status == 403)
            let expired = try await files.token(scope: "admin", expiresIn: -30)
            let late = try await origin.request(.GET, path + "?offset=-1", headers: bearer(expired))
            #expect(late.status == 401)
            #expect(late.text.contains("expired"))
            let forged = try await files.token(scope: "admin", secret: "another-secret-that-is-long-enough-000")
            #expect(try await origin.request(.DELETE, path, headers: bearer(forged)).status == 401)
            #expect(try await origin.request(.HEAD, path, headers: bearer(reader)).status == 200)
        }
    }

    // Preflights and health checks need no credentials; metrics are public unless a scope is set.
    @Test func preflightHealthAndMetrics() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let preflight = try await origin.request(
                .OPTIONS, "/v1/stream/pub/a", headers: [("Origin", "https://app.test"), ("Access-Control-Request-Method", "GET")])
            #expect(preflight.status < 300)
        }
        guard !Topology.throughEdge else { return }  // /healthz and /metrics are then the edge's own
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            #expect(try await origin.request(.GET, "/healthz").status == 200)
            #expect(try await origin.request(.GET, "/metrics").status == 200)
        }
        try await withOrigin(configure: {
            $0.auth = files.settings
            $0.auth.metricsScope = .admin
        }) { (origin: Origin) async throws in
            #expect(try await origin.request(.GET, "/metrics").status == 401)
            #expect(try await origin.request(.GET, "/metrics", headers: bearer(AuthFiles.reader)).status == 403)
            #expect(try await origin.request(.GET, "/metrics", headers: bearer(AuthFiles.admin)).status == 200)
            #expect(try await origin.request(.GET, "/healthz").status == 200)
        }
    }

    // The origin's stats and dashboard tell what /metrics tells, and follow its rule: public
    // without metrics_scope, that scope on every stream with it.
    @Test func originPagesAreGuardedLikeMetrics() async throws {
        guard !Topology.throughEdge else { return }  // the edge would pass these to the origin as other paths
        let files = try AuthFiles()
        defer { files.remove() }
        let paths = ["/metrics", "/__origin/stats", "/__origin/stats?history=hour", "/__origin/"]
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            for path in paths { #expect(try await origin.request(.GET, path).status == 200, "\(path)") }
        }
        try await withOrigin(configure: {
            $0.auth = files.settings
            $0.auth.metricsScope = .admin
        }) { (origin: Origin) async throws in
            for path in paths {
                let anonymous = try await origin.request(.GET, path)
                #expect(anonymous.status == 401 && anonymous.header("WWW-Authenticate") != nil, "\(path)")
                #expect(try await origin.request(.GET, path, headers: bearer(AuthFiles.reader)).status == 403, "\(path)")
                #expect(try await origin.request(.GET, path, headers: bearer(AuthFiles.writer)).status == 403, "\(path)")
                let admin = try await origin.request(.GET, path, headers: bearer(AuthFiles.admin))
                #expect(admin.status == 200 && admin.header("Cache-Control") == "no-store", "\(path)")
            }
            // A stream named like the pages is a stream: stream rules apply to it, not metrics_scope.
            #expect(try await origin.request(.GET, "/v1/stream/__origin?offset=-1").status == 401)
            #expect(try await origin.request(.PUT, "/v1/stream/pub/__origin", headers: bearer(AuthFiles.writer)).status == 201)
            #expect(try await origin.request(.GET, "/v1/stream/pub/__origin?offset=-1", headers: bearer(AuthFiles.reader)).status == 200)
        }
    }
}

@Suite("Readiness and access log")
struct OperationsTests {
    // /readyz is ready while serving and needs no credentials; the access log gets every request.
    @Test func readyzAndTheAccessLog() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        let logPath = files.directory + "/access.log"
        try await withOrigin(configure: {
            $0.auth = files.settings
            $0.accessLog = logPath
        }) { (origin: Origin) async throws in
            guard !Topology.throughEdge else { return }  // /readyz would be the edge's own
            #expect(try await origin.request(.GET, "/readyz").text == "ready\n")
            #expect(try await origin.request(.GET, "/v1/stream/pub/a?offset=-1").status == 401)
            #expect(try await origin.request(.PUT, "/v1/stream/pub/a", headers: bearer(AuthFiles.writer)).status == 201)
        }
        guard !Topology.throughEdge else { return }
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.contains { $0.contains("\"uri\":\"/v1/stream/pub/a?offset=-1\"") && $0.contains("\"status\":401") })
        #expect(lines.contains { $0.contains("\"method\":\"PUT\"") && $0.contains("\"status\":201") && $0.contains("\"principal\":\"writer\"") })
        #expect(lines.filter { $0.contains("\"principal\"") }.count == 1)
    }

    // health_scope protects /healthz and /readyz apart from /metrics: here health needs read,
    // metrics stay public.
    @Test func healthCanBeProtectedSeparately() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        var settings = files.settings
        settings.healthScope = .read
        try await withOrigin(configure: { $0.auth = settings }) { (origin: Origin) async throws in
            guard !Topology.throughEdge else { return }  // /healthz and /readyz would be the edge's own
            for path in ["/healthz", "/readyz"] {
                let anonymous = try await origin.request(.GET, path)
                #expect(anonymous.status == 401 && anonymous.header("WWW-Authenticate") != nil)
                // A key limited to a prefix of streams covers none of the server's own endpoints.
                #expect(try await origin.request(.GET, path, headers: bearer(AuthFiles.reader)).status == 403)
                #expect(try await origin.request(.GET, path, headers: bearer(AuthFiles.admin)).status == 200)
            }
            #expect(try await origin.request(.GET, "/metrics").status == 200)
        }
    }

    // Once a drain begins /readyz says 503, so a load balancer stops sending new requests.
    @Test func readyzTurnsUnavailableWhenDraining() async throws {
        try await withOrigin { (origin: Origin) async throws in
            guard !Topology.throughEdge else { return }
            origin.server.readiness.beginDraining()
            let answer = try await origin.request(.GET, "/readyz")
            #expect(answer.status == 503 && answer.text == "draining\n")
        }
    }
}

@Suite("Reloading authentication")
struct AuthReloadTests {
    // A reload puts new keys in force for the next request; one that cannot load changes nothing.
    @Test func reloadRotatesKeysAndABadOneChangesNothing() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let path = "/v1/stream/pub/r-\(UInt32.random(in: 0...UInt32.max))"
            #expect(try await origin.request(.PUT, path, headers: bearer(AuthFiles.writer) + [("Content-Type", "text/plain")]).status == 201)
            let rotated = files.directory + "/rotated.toml"
            try "[[key]]\nname = \"new\"\nsecret = \"rotated-key-0123456789\"\nscope = \"write\"\n"
                .write(toFile: rotated, atomically: true, encoding: .utf8)
            var settings = files.settings
            settings.apiKeysFile = rotated
            try await origin.server.reloadAuth(settings)
            #expect(try await origin.request(.POST, path, headers: bearer(AuthFiles.writer) + [("Content-Type", "text/plain")], text: "a").status == 401)
            let first = try await origin.request(.POST, path, headers: bearer("rotated-key-0123456789") + [("Content-Type", "text/plain")], text: "a")
            #expect(first.status == 204, "\(first.status) \(first.text)")
            // A key file that does not load: the error is reported and the rotated key still works.
            try "[[key]]\nscope = \"write\"\n".write(toFile: rotated, atomically: true, encoding: .utf8)
            await #expect(throws: AuthConfigurationError.self) { try await origin.server.reloadAuth(settings) }
            #expect(try await origin.request(.POST, path, headers: bearer("rotated-key-0123456789") + [("Content-Type", "text/plain")], text: "b").status == 204)
            // Authentication can be turned off by a reload, and on again.
            try await origin.server.reloadAuth(AuthSettings())
            #expect(try await origin.request(.GET, path + "?offset=-1").text == "ab")
            try await origin.server.reloadAuth(files.settings)
            // (HEAD: an edge in front may have cached the open read of a moment ago.)
            #expect(try await origin.request(.HEAD, path).status == 401)
        }
    }
}

@Suite("Authentication of the subscription API")
struct SubscriptionAuthTests {
    /// Managing needs admin, claiming write; a wake's ack carries the subscription's own token,
    /// which is no service credential and needs none; the key set is public.
    @Test func scopesGuardTheControlAPIAndWakeTokensNeedNoServiceCredential() async throws {
        let files = try AuthFiles()
        defer { files.remove() }
        try await withOrigin(configure: { $0.auth = files.settings }) { (origin: Origin) async throws in
            let config: [String: Any] = ["type": "pull-wake", "streams": ["pub/s"], "wake_stream": "pub/wake"]
            #expect(try await origin.request(.PUT, "/v1/stream/pub/wake", headers: bearer(AuthFiles.writer) + [("Content-Type", "application/json")], text: "[]").status == 201)
            let path = "/v1/stream/__ds/subscriptions/s1"
            let body = Array(try JSONSerialization.data(withJSONObject: config))
            #expect(try await origin.request(.PUT, path, headers: [("Content-Type", "application/json")], body: body).status == 401)
            #expect(try await origin.request(.PUT, path, headers: bearer(AuthFiles.writer), body: body).status == 403)
            #expect(try await origin.request(.PUT, path, headers: bearer(AuthFiles.admin), body: body).status == 201)
            #expect(try await origin.request(.GET, "/v1/stream/__ds/jwks.json").status == 200)

            #expect(try await origin.request(.PUT, "/v1/stream/pub/s", headers: bearer(AuthFiles.writer) + [("Content-Type", "text/plain")], text: "x").status == 201)
            let claimBody = Array(#"{"worker":"w"}"#.utf8)
            #expect(try await origin.request(.POST, path + "/claim", body: claimBody).status == 401)
            let token = try await files.token(scope: "write:__ds/subscriptions/")
            let claim = try await origin.request(.POST, path + "/claim", headers: bearer(token), body: claimBody)
            #expect(claim.status == 200)
            let wakeToken = try #require(claim.json["token"] as? String)
            let ack = Array(try JSONSerialization.data(withJSONObject: ["wake_id": claim.json["wake_id"]!, "generation": claim.json["generation"]!, "done": true]))
            let acked = try await origin.request(.POST, path + "/ack", headers: bearer(wakeToken), body: ack)
            #expect(acked.status == 200, "\(acked.status) \(acked.text)")
            #expect(try await origin.request(.POST, path + "/ack", headers: bearer(AuthFiles.admin), body: ack).errorCode == "TOKEN_INVALID")
        }
    }
}
