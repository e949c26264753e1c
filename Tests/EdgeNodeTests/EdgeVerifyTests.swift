import EdgeNode
import ServerSupport
import Foundation
import JWTKit
import NIOCore
import OriginServer
import StreamAuth
import TestSupport
import Testing

/// An origin and an edge that both check credentials: the same HS256 secret and key file; the
/// edge, in `credentials = verify`, reads upstream with its own reader key.
private struct VerifyFixture {
    let directory: String
    let keysPath: String
    let secretPath: String
    let upstreamKeyPath: String
    static let secret = "edge-verify-test-secret-0123456789abcdef"
    static let edgeKey = "edge-reader-key-0123456789"
    static let adminKey = "admin-key-0123456789abcdef"

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-edge-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        keysPath = directory + "/keys.toml"
        secretPath = directory + "/jwt.secret"
        upstreamKeyPath = directory + "/upstream.key"
        try """
            [[key]]
            name = "edge"
            secret = "\(Self.edgeKey)"
            scope = "read"

            [[key]]
            name = "admin"
            secret = "\(Self.adminKey)"
            scope = "admin"
            """.write(toFile: keysPath, atomically: true, encoding: .utf8)
        try Self.secret.write(toFile: secretPath, atomically: true, encoding: .utf8)
        try (Self.edgeKey + "\n").write(toFile: upstreamKeyPath, atomically: true, encoding: .utf8)
    }

    var auth: AuthSettings {
        var settings = AuthSettings()
        settings.apiKeysFile = keysPath
        settings.jwtKeys.hs256Secret = secretPath
        return settings
    }

    func token(_ user: String, scope: String) async throws -> String {
        struct Claims: JWTPayload {
            var sub: SubjectClaim
            var exp: ExpirationClaim
            var scope: String
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        return try await keys.sign(Claims(sub: SubjectClaim(value: user), exp: ExpirationClaim(value: Date().addingTimeInterval(3600)), scope: scope))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    func run(_ body: (EdgeTopology) async throws -> Void) async throws {
        try await withEdges(
            origin: { $0.auth = auth },
            edge: {
                $0.credentials = .verify
                $0.auth = auth
                $0.upstreamAuthorizationFile = upstreamKeyPath
            }, body)
    }
}

private func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer \(token)")] }

@Suite("Edge: credentials = verify")
struct EdgeVerifyTests {
    // Two users allowed the same stream share one cache entry; a third, not allowed, never gets it.
    @Test func authorisedReadersShareTheCacheAndOthersNeverReachIt() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await fixture.run { edges in
            let alice = try await fixture.token("alice", scope: "read:team-a/")
            let ann = try await fixture.token("ann", scope: "read:team-a/ write:team-a/")
            let bob = try await fixture.token("bob", scope: "read:team-b/")
            #expect(try await edges.request(.PUT, "/v1/stream/team-a/s", headers: bearer(ann) + [("Content-Type", "text/plain")], body: "secret").status == 201)
            let first = try await edges.request(.GET, "/v1/stream/team-a/s?offset=-1", headers: bearer(alice))
            #expect(first.status == 200 && first.text == "secret")
            let second = try await edges.request(.GET, "/v1/stream/team-a/s?offset=-1", headers: bearer(ann))
            #expect(second.status == 200 && second.header("X-Cache") == "HIT")
            // Shared inside the edge, private beyond it: no cache downstream may keep it for others.
            #expect(second.header("Cache-Control")?.hasPrefix("private") == true)
            let readsBefore = edges.originRequests("read")
            let denied = try await edges.request(.GET, "/v1/stream/team-a/s?offset=-1", headers: bearer(bob))
            #expect(denied.status == 403 && denied.text != "secret")
            // With alice's ETag bob gets no 304 that would confirm the content either.
            let etag = try #require(first.header("ETag"))
            let conditional = try await edges.request(.GET, "/v1/stream/team-a/s?offset=-1", headers: bearer(bob) + [("If-None-Match", etag)])
            #expect(conditional.status == 403)
            let anonymous = try await edges.request(.GET, "/v1/stream/team-a/s?offset=-1")
            #expect(anonymous.status == 401 && anonymous.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            let head = try await edges.request(.HEAD, "/v1/stream/team-a/s", headers: bearer(bob))
            #expect(head.status == 403)
            let counted = edges.edge.metrics.registry.emitToString()
            #expect(counted.contains("ds_edge_auth_refusals_total{reason=\"forbidden\"} 3"))
            #expect(counted.contains("ds_edge_auth_refusals_total{reason=\"missing\"} 1"))
            // None of the refused requests reached the origin.
            #expect(edges.originRequests("read") == readsBefore)
            #expect(edges.originRequests("head") == 0)
        }
    }

    // Long-polls of different users allowed the stream collapse into one upstream request; a
    // user not allowed is refused at once rather than joining the wait.
    @Test func longPollsCollapseAcrossUsersAndRefuseOthers() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await fixture.run { edges in
            let writer = try await fixture.token("w", scope: "write:live/")
            #expect(try await edges.request(.PUT, "/v1/stream/live/s", headers: bearer(writer) + [("Content-Type", "text/plain")]).status == 201)
            let tail = "0000000000000000_0000000000000000"
            var connections: [TestConnection] = []
            var polls: [EventLoopFuture<TestResponse>] = []
            for user in ["u1", "u2", "u3"] {
                let token = try await fixture.token(user, scope: "read:live/")
                let connection = try await TestConnection.connect(port: edges.port)
                connections.append(connection)
                polls.append(connection.send(.GET, "/v1/stream/live/s?offset=\(tail)&live=long-poll", headers: bearer(token)))
            }
            try await eventually { edges.edge.collapsedWaiters == 3 }
            let outsider = try await fixture.token("x", scope: "read:other/")
            let refused = try await edges.request(.GET, "/v1/stream/live/s?offset=\(tail)&live=long-poll", headers: bearer(outsider))
            #expect(refused.status == 403)
            #expect(try await edges.request(.POST, "/v1/stream/live/s", headers: bearer(writer) + [("Content-Type", "text/plain")], body: "news").status == 204)
            for poll in polls {
                let answer = try await poll.get()
                #expect(answer.status == 200 && answer.text == "news")
            }
            for connection in connections { await connection.close() }
            #expect(edges.originRequests("long_poll") == 1)
        }
    }

    // SSE readers of different users share one upstream subscription; others are refused.
    @Test func sseReadersShareOneSubscriptionAndOthersAreRefused() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await fixture.run { edges in
            let writer = try await fixture.token("w", scope: "write:feed/")
            #expect(try await edges.request(.PUT, "/v1/stream/feed/s", headers: bearer(writer) + [("Content-Type", "text/plain")], body: "hello").status == 201)
            var readers: [SSEReader] = []
            for user in ["r1", "r2"] {
                let token = try await fixture.token(user, scope: "read:feed/")
                readers.append(try await SSEReader.open(port: edges.port, "/v1/stream/feed/s?offset=-1&live=sse", headers: bearer(token)))
            }
            for reader in readers {
                let event = await reader.next()
                #expect(event == SSEEvent(event: "data", data: "hello"))
            }
            let outsider = try await fixture.token("x", scope: "read:other/")
            let refused = try await edges.request(.GET, "/v1/stream/feed/s?offset=-1&live=sse", headers: bearer(outsider))
            #expect(refused.status == 403)
            for reader in readers { await reader.close() }
            // The origin counts an SSE request when it ends, after the edge's subscription closes.
            try await eventually { edges.originRequests("sse") >= 1 }
            #expect(edges.originRequests("sse") == 1)
        }
    }

    // Writes are checked at the edge and again at the origin with the writer's own credential.
    @Test func writesCarryTheClientsCredential() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await fixture.run { edges in
            let reader = try await fixture.token("r", scope: "read")
            #expect(try await edges.request(.PUT, "/v1/stream/w/s", headers: bearer(reader)).status == 403)
            // The edge's own key may read everything, but a client presenting it may not write.
            #expect(try await edges.request(.PUT, "/v1/stream/w/s", headers: bearer(VerifyFixture.edgeKey)).status == 403)
            #expect(try await edges.request(.PUT, "/v1/stream/w/s", headers: bearer(VerifyFixture.adminKey)).status == 201)
            #expect(try await edges.request(.DELETE, "/v1/stream/w/s", headers: bearer(VerifyFixture.adminKey)).status == 204)
        }
    }

    // In front of an origin without authentication the edge still checks, still shares its
    // entries, and marks what it serves private; paths it would forward unchecked need credentials.
    @Test func anOpenOriginBehindAVerifyingEdge() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await withEdges(edge: {
            $0.credentials = .verify
            $0.auth = fixture.auth
        }) { edges in
            #expect(try await edges.originRequest(.PUT, "/v1/stream/open/s", headers: [("Content-Type", "text/plain")], body: "o").status == 201)
            let one = try await fixture.token("one", scope: "read:open/")
            let two = try await fixture.token("two", scope: "read:open/")
            let first = try await edges.request(.GET, "/v1/stream/open/s?offset=-1", headers: bearer(one))
            #expect(first.status == 200 && first.header("Cache-Control")?.hasPrefix("private") == true)
            let second = try await edges.request(.GET, "/v1/stream/open/s?offset=-1", headers: bearer(two))
            #expect(second.header("X-Cache") == "HIT" && second.text == "o")
            #expect(second.header("Cache-Control")?.hasPrefix("private") == true)
            #expect(try await edges.request(.GET, "/v1/stream/open/s?offset=-1").status == 401)
            #expect(try await edges.request(.GET, "/v1/x/../stream/open/s").status == 401)
            #expect(try await edges.request(.GET, "/v1/x/../stream/open/s", headers: bearer(one)).status == 403)
        }
    }

    // Verify mode without anything to verify with is a configuration error, not an open edge.
    // The edge's upstream credential is read again on reload: a rotated key is used for the
    // next upstream read, and the old one, once the origin stops taking it, is never sent again.
    @Test func aReloadRotatesTheUpstreamCredential() async throws {
        let fixture = try VerifyFixture()
        defer { fixture.remove() }
        try await fixture.run { edges in
            let admin = [("Authorization", "Bearer \(VerifyFixture.adminKey)"), ("Content-Type", "text/plain")]
            let reader = try await fixture.token("rita", scope: "read")
            for name in ["one", "two"] {
                #expect(try await edges.originRequest(.PUT, "/v1/stream/\(name)", headers: admin, body: name).status == 201)
            }
            #expect(try await edges.request(.GET, "/v1/stream/one?offset=-1", headers: bearer(reader)).status == 200)
            // The origin now takes only a new edge key.
            let newKey = "edge-reader-key-rotated-0123456789"
            try """
                [[key]]
                name = "edge"
                secret = "\(newKey)"
                scope = "read"

                [[key]]
                name = "admin"
                secret = "\(VerifyFixture.adminKey)"
                scope = "admin"
                """.write(toFile: fixture.keysPath, atomically: true, encoding: .utf8)
            try await edges.origin.reloadAuth(fixture.auth)
            #expect(try await edges.request(.GET, "/v1/stream/two?offset=-1", headers: bearer(reader)).status == 401)
            // A credential file that cannot be used changes nothing.
            try "".write(toFile: fixture.upstreamKeyPath, atomically: true, encoding: .utf8)
            await #expect(throws: AuthConfigurationError.self) {
                try await edges.edge.reloadAuth(fixture.auth, upstreamAuthorizationFile: fixture.upstreamKeyPath)
            }
            try (newKey + "\n").write(toFile: fixture.upstreamKeyPath, atomically: true, encoding: .utf8)
            try await edges.edge.reloadAuth(fixture.auth, upstreamAuthorizationFile: fixture.upstreamKeyPath)
            let rotated = try await edges.request(.GET, "/v1/stream/two?offset=-1", headers: bearer(reader))
            #expect(rotated.status == 200 && rotated.text == "two")
        }
    }

    @Test func verifyWithoutKeysIsRefused() throws {
        var configuration = EdgeConfiguration()
        #expect(throws: (any Error).self) {
            try configuration.apply(ConfigurationFile(text: "credentials = \"verify\"", path: "edge.conf"))
        }
    }
}

@Suite("Edge: readiness and access log")
struct EdgeOperationsTests {
    // The edge answers /readyz itself and logs each request with its cache outcome.
    @Test func readyzAndAccessLogWithCacheOutcome() async throws {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("ds-edge-access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        try await withEdges(edge: { $0.accessLog = logPath }) { edges in
            #expect(try await edges.request(.GET, "/readyz").text == "ready\n")
            _ = try await edges.request(.PUT, "/v1/stream/logged", headers: [("Content-Type", "text/plain")], body: "x")
            _ = try await edges.request(.GET, "/v1/stream/logged?offset=-1")
            #expect(try await edges.request(.GET, "/v1/stream/logged?offset=-1").header("X-Cache") == "HIT")
            edges.edge.readiness.beginDraining()
            #expect(try await edges.request(.GET, "/readyz").status == 503)
        }
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines.filter { $0.contains("/v1/stream/logged?offset=-1") }.map { $0.contains("\"cache\":\"HIT\"") } == [false, true])
    }
}
