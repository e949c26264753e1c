@testable import EdgeNode
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import StreamAuth
import TestSupport
import Testing

/// The protocol's control paths (`<prefix>__ds/…`: subscriptions, their callbacks and claims,
/// the origin's key set) are the origin's APIs, not streams: the edge passes them through as
/// they came, and passes back what the origin answers.
@Suite("Edge: __ds control paths")
struct EdgeReservedPathTests {
    static let json = [("Content-Type", "application/json")]

    /// A JSON answer from the fake origin.
    static func answer(_ status: HTTPResponseStatus, _ body: String, cacheControl: String = "no-store", extra: [(String, String)] = [])
        -> FakeResponse
    {
        FakeResponse(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", cacheControl)] + extra, body: body)
    }

    /// The edge's count of client requests of one class and outcome.
    static func requests(_ edge: EdgeServer, _ kind: String, _ outcome: String) -> Int {
        EdgeTopology.sum(edge.metrics.registry.emitToString(), metric: "ds_edge_requests_total", label: "class=\"\(kind)\",cache=\"\(outcome)\"")
    }

    // MARK: Which paths are control paths

    @Test func controlPathsAreTheFirstSegmentUnderThePrefixDecoded() {
        let prefix = "/v1/stream/"
        for path in [
            "/v1/stream/__ds", "/v1/stream/__ds/", "/v1/stream/__ds/subscriptions/sub-1",
            "/v1/stream/__ds/subscriptions/sub-1/streams/manual%2Fb", "/v1/stream/__ds/jwks.json",
            // Spellings the origin's canonical form reads as `__ds/…`.
            "/v1/stream/%5F%5Fds/subscriptions/x", "/v1/stream/%5f%5fds", "/v1/stream/__ds%2Fsubscriptions%2Fx",
            "/v1/stream/_%5Fds/x",
        ] {
            #expect(ControlPath.contains(Substring(path), prefix: prefix), "\(path)")
        }
        for path in [
            "/v1/stream/", "/v1/stream/__dsx", "/v1/stream/__DS/x", "/v1/stream/a/__ds", "/v1/stream/_ds/x",
            "/v1/stream/__ds%zz/x", "/v1/stream/%5F%5Fdsx", "/v2/stream/__ds/x", "/__ds/x", "/v1/stream",
        ] {
            #expect(!ControlPath.contains(Substring(path), prefix: prefix), "\(path)")
        }
        #expect(ControlPath.contains(uri: "/v1/stream/__ds/x?offset=-1", prefix: prefix))
        #expect(!ControlPath.contains(uri: "/v1/stream/x?p=/v1/stream/__ds", prefix: prefix))
        #expect(ControlPath.isKeySet("/v1/stream/__ds/jwks.json", prefix: prefix))
        #expect(!ControlPath.isKeySet("/v1/stream/__ds/jwks.jsonx", prefix: prefix))
        #expect(!ControlPath.isKeySet("/v1/stream/%5F%5Fds/jwks.json", prefix: prefix))
        #expect(!ControlPath.isKeySet("/v1/stream/__ds/subscriptions/x", prefix: prefix))
    }

    // MARK: Never cached, collapsed or decoded

    /// Even an answer that says a shared cache may keep it is not kept: only the origin knows
    /// what a subscription's state is now.
    @Test func controlReadsAreNeverCached() async throws {
        try await withFakeUpstream({ _ in Self.answer(.ok, #"{"id":"x"}"#, cacheControl: "public, max-age=300") }) { edge in
            for _ in 0..<2 {
                let response = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/x")
                #expect(response.status == 200)
                #expect(response.text == #"{"id":"x"}"#)
                #expect(response.header("Cache-Control") == "public, max-age=300")
                #expect(response.header("X-Cache") == "PASS")
            }
            #expect(edge.fake.requests(.GET, path: "/v1/stream/__ds/subscriptions/x").count == 2)
            // Another spelling of the same reserved segment is no stream either.
            for _ in 0..<2 { _ = try await edge.request(.GET, "/v1/stream/%5F%5Fds/subscriptions/x") }
            #expect(edge.fake.requests(.GET, path: "/v1/stream/%5F%5Fds/subscriptions/x").count == 2)
            #expect(edge.edge.cacheStats.entries == 0)
            #expect(Self.requests(edge.edge, "other", "PASS") == 4)
            #expect(Self.requests(edge.edge, "catch_up", "MISS") == 0)
        }
    }

    /// Concurrent identical requests each reach the origin: a claim or a read of a subscription
    /// must never be answered with another client's answer.
    @Test func concurrentControlRequestsAreNotCollapsed() async throws {
        let gate = FakeGate()
        try await withFakeUpstream({ _ in Self.answer(.ok, "{}").held(by: gate) }) { edge in
            async let first = edge.request(.GET, "/v1/stream/__ds/subscriptions/x")
            async let second = edge.request(.GET, "/v1/stream/__ds/subscriptions/x")
            // Both are held upstream at once before either is answered.
            try await eventually { edge.fake.requests.count == 2 }
            gate.open()
            let answers = try await [first, second]
            #expect(answers.map(\.status) == [200, 200])
            #expect(answers.allSatisfy { $0.header("X-Cache") == "PASS" })
            #expect(edge.edge.collapsedWaiters == 0)
        }
    }

    /// Queries that would be stream-operation errors at the edge (a bad offset, an unknown live
    /// mode) and `live=sse` are the origin's to read here: passed as they are, no SSE fan-out.
    @Test func queriesAreNotDecodedAsStreamOperations() async throws {
        try await withFakeUpstream({ _ in Self.answer(.ok, "[]") }) { edge in
            for target in [
                "/v1/stream/__ds/subscriptions/x?offset=bogus&live=nonsense",
                "/v1/stream/__ds/subscriptions/x?live=sse&offset=-1",
            ] {
                let response = try await edge.request(.GET, target)
                #expect(response.status == 200)
                #expect(response.text == "[]")
                #expect(response.header("Content-Type") == "application/json")
                #expect(response.header("X-Cache") == "PASS")
            }
            #expect(edge.fake.requests.map(\.uri) == [
                "/v1/stream/__ds/subscriptions/x?offset=bogus&live=nonsense",
                "/v1/stream/__ds/subscriptions/x?live=sse&offset=-1",
            ])
        }
    }

    // MARK: Forwarded as received

    /// The stream path inside the target keeps its `%2F`: the origin decodes it itself.
    @Test func targetsAreForwardedByteForByte() async throws {
        try await withFakeUpstream({ _ in FakeResponse(status: .noContent, headers: [("Cache-Control", "no-store")]) }) { edge in
            let target = "/v1/stream/__ds/subscriptions/sub-1/streams/manual%2Fb"
            let response = try await edge.request(.DELETE, target)
            #expect(response.status == 204)
            #expect(response.header("X-Cache") == "PASS")
            let withQuery = "/v1/stream/__ds/subscriptions/sub-1/streams/a%2Fb%20c?x=%2F&y"
            _ = try await edge.request(.DELETE, withQuery)
            #expect(edge.fake.requests.map(\.uri) == [target, withQuery])
            #expect(edge.fake.requests.map(\.method) == [.DELETE, .DELETE])
        }
    }

    /// Bodies go up and answers come back as they are: status, headers and body of a refusal
    /// included, and the edge adds nothing but `X-Cache`.
    @Test func bodiesAndAnswersPassThroughUnchanged() async throws {
        let created = #"{"id":"sub-1","callback_url":"http://127.0.0.1/v1/stream/__ds/subscriptions/sub-1/callback"}"#
        let conflict = #"{"error":{"code":"ALREADY_CLAIMED","current_holder":"w-2","message":"claimed"}}"#
        try await withFakeUpstream({ request in
            switch (request.method, request.path) {
            case (.PUT, "/v1/stream/__ds/subscriptions/sub-1"):
                return Self.answer(.created, created, extra: [("Location", "http://127.0.0.1/v1/stream/__ds/subscriptions/sub-1"), ("X-Custom", "1")])
            case (.POST, "/v1/stream/__ds/subscriptions/sub-1/claim"):
                return Self.answer(.conflict, conflict)
            default:
                return FakeResponse(status: .notFound)
            }
        }) { edge in
            let definition = #"{"streams":["manual/a","manual/b"],"delivery":{"mode":"pull"}}"#
            let put = try await edge.request(.PUT, "/v1/stream/__ds/subscriptions/sub-1", headers: Self.json, body: definition)
            #expect(put.status == 201)
            #expect(put.text == created)
            #expect(put.header("Content-Type") == "application/json")
            #expect(put.header("Cache-Control") == "no-store")
            #expect(put.header("Location") == "http://127.0.0.1/v1/stream/__ds/subscriptions/sub-1")
            #expect(put.header("X-Custom") == "1")
            #expect(put.header("X-Cache") == "PASS")

            let claim = try await edge.request(
                .POST, "/v1/stream/__ds/subscriptions/sub-1/claim", headers: Self.json + [("Authorization", "Bearer claim-token")],
                body: #"{"worker":"w-1"}"#)
            #expect(claim.status == 409)
            #expect(claim.text == conflict)
            #expect(claim.header("Content-Type") == "application/json")
            #expect(claim.header("Cache-Control") == "no-store")
            #expect(claim.header("X-Cache") == "PASS")

            let received = edge.fake.requests
            #expect(received.map(\.body) == [definition, #"{"worker":"w-1"}"#])
            #expect(received.map { $0.header("Content-Type") } == ["application/json", "application/json"])
            #expect(received[1].header("Authorization") == "Bearer claim-token")
            #expect(Self.requests(edge.edge, "other", "PASS") == 2)
            #expect(Self.requests(edge.edge, "write", "PASS") == 0)
        }
    }

    /// A request with an empty body (a `release` with nothing to say) goes as one too.
    @Test func emptyPostsPassThrough() async throws {
        try await withFakeUpstream({ _ in FakeResponse(status: .noContent) }) { edge in
            let response = try await edge.request(.POST, "/v1/stream/__ds/subscriptions/sub-1/release", headers: [("Authorization", "Bearer t")])
            #expect(response.status == 204)
            #expect(edge.fake.requests.map(\.method) == [.POST])
            #expect(edge.fake.requests.first?.header("Authorization") == "Bearer t")
        }
    }

    @Test func authorizationReachesTheOriginAsSent() async throws {
        for policy in [EdgeConfiguration.CredentialPolicy.partition, .bypass] {
            try await withFakeUpstream(edge: { $0.credentials = policy }, { _ in Self.answer(.ok, "{}") }) { edge in
                let response = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/x", headers: [("Authorization", "Bearer abc")])
                #expect(response.status == 200)
                #expect(edge.fake.requests.map { $0.header("Authorization") } == ["Bearer abc"])
            }
        }
    }

    /// With `credentials = verify` the edge checks stream requests itself and reads with its own
    /// credential; control requests carry subscription tokens it cannot judge, so they reach the
    /// origin unchecked and with the client's own `Authorization`.
    @Test func verifyingEdgeNeitherChecksNorReplacesControlCredentials() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-edge-reserved-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let readerKey = "reader-key-0123456789abcdef"
        let edgeKey = "edge-upstream-key-0123456789"
        try """
            [[key]]
            name = "reader"
            secret = "\(readerKey)"
            scope = "read"
            """.write(toFile: directory + "/keys.toml", atomically: true, encoding: .utf8)
        try edgeKey.write(toFile: directory + "/upstream.key", atomically: true, encoding: .utf8)
        let conflict = #"{"error":{"code":"ALREADY_CLAIMED","message":"claimed"}}"#
        try await withFakeUpstream(edge: {
            $0.credentials = .verify
            $0.auth.apiKeysFile = directory + "/keys.toml"
            $0.upstreamAuthorizationFile = directory + "/upstream.key"
        }, { request in
            if request.path == "/v1/stream/s" { return FakeResponse.read("data", next: 4, cacheControl: "public, max-age=60") }
            if request.path.hasSuffix("/claim") { return Self.answer(.conflict, conflict) }
            return Self.answer(.ok, #"{"keys":[]}"#, cacheControl: "public, max-age=300")
        }) { edge in
            // Verify is in force for streams: a token the edge does not know is refused there,
            // and an authorised read goes up with the edge's own credential.
            #expect(try await edge.request(.GET, "/v1/stream/s?offset=-1", headers: [("Authorization", "Bearer abc")]).status == 401)
            #expect(try await edge.request(.GET, "/v1/stream/s?offset=-1", headers: [("Authorization", "Bearer \(readerKey)")]).status == 200)
            #expect(edge.fake.requests.map { $0.header("Authorization") } == ["Bearer \(edgeKey)"])

            let read = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/x", headers: [("Authorization", "Bearer abc")])
            #expect(read.status == 200)
            // Not made `private` the way answers the edge authorised are.
            #expect(read.header("Cache-Control") == "public, max-age=300")
            #expect(read.header("Vary") == nil)
            let claim = try await edge.request(
                .POST, "/v1/stream/__ds/subscriptions/sub-1/claim", headers: Self.json + [("Authorization", "Bearer abc")], body: "{}")
            #expect(claim.status == 409)
            #expect(claim.text == conflict)
            // Encoded spellings are no way around it either: they too go to the origin to judge.
            _ = try await edge.request(.GET, "/v1/stream/%5F%5Fds/subscriptions/x", headers: [("Authorization", "Bearer abc")])
            // The key set needs no credentials at all.
            #expect(try await edge.request(.GET, "/v1/stream/__ds/jwks.json").status == 200)

            let control = edge.fake.requests.dropFirst()
            #expect(control.map { $0.header("Authorization") } == ["Bearer abc", "Bearer abc", "Bearer abc", nil])
            let refusals = EdgeTopology.sum(edge.edge.metrics.registry.emitToString(), metric: "ds_edge_auth_refusals_total", label: "reason=")
            #expect(refusals == 1)
        }
    }

    // MARK: The key set

    /// The one control answer meant to be shared: kept for its max-age, like a route answer.
    @Test func keySetIsCachedForItsMaxAge() async throws {
        try await withFakeUpstream({ _ in Self.answer(.ok, #"{"keys":[]}"#, cacheControl: "public, max-age=300") }) { edge in
            let first = try await edge.request(.GET, "/v1/stream/__ds/jwks.json")
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.text == #"{"keys":[]}"#)
            let second = try await edge.request(after: .seconds(299), "/v1/stream/__ds/jwks.json")
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.header("Cache-Control") == "public, max-age=300")
            #expect(second.header("Age") == "299")
            #expect(second.text == #"{"keys":[]}"#)
            #expect(edge.fake.requests.count == 1)
            // Past its max-age it is fetched again.
            let third = try await edge.request(after: .seconds(2), "/v1/stream/__ds/jwks.json")
            #expect(third.header("X-Cache") == "MISS")
            #expect(edge.fake.requests.count == 2)
            // A request with credentials never uses the shared copy.
            let credentialed = try await edge.request(.GET, "/v1/stream/__ds/jwks.json", headers: [("Authorization", "Bearer abc")])
            #expect(credentialed.header("X-Cache") == "PASS")
            #expect(edge.fake.requests.count == 3)
            #expect(Self.requests(edge.edge, "other", "HIT") == 1)
            #expect(Self.requests(edge.edge, "other", "MISS") == 2)
            #expect(edge.edge.cacheStats.entries == 0)
        }
    }

    @Test func keySetWithoutAPublicMaxAgeIsNotKept() async throws {
        try await withFakeUpstream({ _ in Self.answer(.ok, #"{"keys":[]}"#, cacheControl: "no-store") }) { edge in
            for _ in 0..<2 {
                let response = try await edge.request(.GET, "/v1/stream/__ds/jwks.json")
                #expect(response.header("X-Cache") == "PASS")
            }
            #expect(edge.fake.requests.count == 2)
        }
    }

    // MARK: X-Forwarded-Proto

    /// Every request the edge forwards says how the client reached it, so that the origin can
    /// name the edge in the URLs it builds (`callback_url`, `jwks_url`, `Location`). A client's
    /// own value is replaced.
    @Test func forwardedProtoIsHTTPOnAPlainConnection() async throws {
        try await withFakeUpstream({ request in
            request.path.contains("__ds") ? Self.answer(.ok, "{}") : FakeResponse.read("x", next: 1, cacheControl: "public, max-age=60")
        }) { edge in
            let spoofed = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "attacker.example")]
            _ = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/x", headers: spoofed)
            _ = try await edge.request(.GET, "/v1/stream/s?offset=-1", headers: spoofed)
            _ = try await edge.request(.POST, "/v1/stream/s", headers: [("Content-Type", "text/plain")] + spoofed, body: "y")
            let received = edge.fake.requests
            #expect(received.count == 3)
            for request in received {
                #expect(request.headers["X-Forwarded-Proto"] == ["http"])
                #expect(request.headers["X-Forwarded-Host"] == ["127.0.0.1:\(edge.port)"])
            }
        }
    }

    /// An inner tier keeps what the outer edge set, as it keeps `X-Forwarded-Host`.
    @Test func trustedForwardedProtoIsKept() async throws {
        try await withFakeUpstream(edge: { $0.trustForwardedHost = true }, { _ in Self.answer(.ok, "{}") }) { edge in
            _ = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/x", headers: [("X-Forwarded-Proto", "https")])
            _ = try await edge.request(.GET, "/v1/stream/__ds/subscriptions/y")
            #expect(edge.fake.requests.map { $0.headers["X-Forwarded-Proto"] } == [["https"], ["http"]])
        }
    }

    @Test func forwardedProtoIsHTTPSThroughATLSListener() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withFakeUpstream(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }, { _ in
            Self.answer(.ok, "{}")
        }) { edge in
            let connection = try await TestConnection.connect(port: edge.port, tls: try ca.clientContext(protocols: ["http/1.1"]))
            defer { Task { await connection.close() } }
            let response = try await connection.request(.GET, "/v1/stream/__ds/subscriptions/x", headers: [("X-Forwarded-Proto", "http")])
            #expect(response.status == 200)
            #expect(edge.fake.requests.map { $0.headers["X-Forwarded-Proto"] } == [["https"]])
        }
    }
}
