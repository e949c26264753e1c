import EdgeNode
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OriginServer
import ServerSupport
import StreamAuth
import TestSupport
import Testing

/// The policy of the test's authorization service, by credential: `writer` may write (and read)
/// streams under `pub/`, `reader` may read them, `admin` may do anything; no credential gets 401
/// with the service's own challenge, `Bearer broken` a 500.
private func policy(_ seen: FakeAuthEndpoint.Seen) -> FakeAuthEndpoint.Answer {
    let scope = seen.header("X-Durable-Streams-Scope") ?? "?"
    let onPub = seen.header("X-Durable-Streams-Stream")?.hasPrefix("pub/") == true
    switch seen.header("Authorization") {
    case nil: return .init(.unauthorized, headers: [("WWW-Authenticate", "Bearer realm=\"corp\"")])
    case "Bearer admin": return .init(.ok)
    case "Bearer writer": return .init(onPub && (scope == "read" || scope == "write") ? .ok : .forbidden)
    case "Bearer reader": return .init(onPub && scope == "read" ? .noContent : .forbidden)
    case "Bearer broken": return .init(.internalServerError)
    default: return .init(.unauthorized)
    }
}

private func bearer(_ who: String) -> [(String, String)] { [("Authorization", "Bearer \(who)")] }
private let text = [("Content-Type", "text/plain")]

/// An origin whose requests the fake endpoint decides, for the duration of `body`.
private func withForwardAuth<T>(
    metricsScope: AccessScope? = nil,
    _ body: (Origin, FakeAuthEndpoint) async throws -> T
) async throws -> T {
    try await FakeAuthEndpoint.with(policy) { endpoint in
        let url = try ForwardAuthEndpoint(url: endpoint.url("/auth"))
        return try await withOrigin(configure: {
            $0.auth.forwardAuthURL = url
            $0.auth.forwardAuthCache = .seconds(60)
            // Generous: a loaded machine is slow, not down (aSilentServiceTimesOut sets its own).
            $0.auth.forwardAuthTimeout = .seconds(30)
            $0.auth.metricsScope = metricsScope
        }) { origin in try await body(origin, endpoint) }
    }
}

/// A stream path of its own under `pub/`.
private func pubPath() -> String { "/v1/stream/pub/fa-\(UInt64.random(in: 0...UInt64.max))" }

@Suite("Forward auth on the origin")
struct ForwardAuthTests {
    // What the service allows happens, and the answer is private to the requester.
    @Test func allowedRequestsProceed() async throws {
        try await withForwardAuth { (origin: Origin, _: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("writer") + text).status == 201)
            #expect(try await origin.request(.POST, path, headers: bearer("writer") + text, text: "hello").status == 204)
            let read = try await origin.request(.GET, path + "?offset=-1", headers: bearer("reader"))
            #expect(read.status == 200 && read.text == "hello")
            #expect(read.header("Cache-Control")?.contains("public") == false)
            #expect(try await origin.request(.DELETE, path, headers: bearer("admin")).status == 204)
        }
    }

    // The service's 401 and 403 reach the client (with its challenge) and change nothing.
    @Test func refusalsArePassedOnAndChangeNothing() async throws {
        try await withForwardAuth { (origin: Origin, _: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("writer") + text, text: "kept").status == 201)
            let anonymous = try await origin.request(.POST, path, headers: text, text: "x")
            #expect(anonymous.status == 401)
            #expect(anonymous.header("WWW-Authenticate") == "Bearer realm=\"corp\"")
            // A 401 without a challenge still gets one (RFC 9110 requires it).
            let stranger = try await origin.request(.POST, path, headers: bearer("stranger") + text, text: "x")
            #expect(stranger.status == 401 && stranger.header("WWW-Authenticate") == "Bearer realm=\"durable-streams\"")
            let reader = try await origin.request(.POST, path, headers: bearer("reader") + text, text: "x")
            #expect(reader.status == 403)
            #expect(try await origin.request(.DELETE, path, headers: bearer("writer")).status == 403)
            #expect(try await origin.request(.PUT, "/v1/stream/private/x", headers: bearer("writer") + text).status == 403)
            #expect(try await origin.request(.GET, path + "?offset=-1", headers: bearer("admin")).text == "kept")
            #expect(try await origin.request(.HEAD, "/v1/stream/private/x", headers: bearer("admin")).status == 404)
        }
    }

    // No decision is a refusal: a 500 from the service, or a service that is down. 503 with
    // Retry-After, and nothing changes.
    @Test func failuresAreUnavailableAndChangeNothing() async throws {
        try await withForwardAuth { (origin: Origin, endpoint: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("writer") + text, text: "kept").status == 201)
            let broken = try await origin.request(.POST, path, headers: bearer("broken") + text, text: "x")
            #expect(broken.status == 503 && broken.header("Retry-After") == "1")
            #expect(broken.text.contains("answered 500"))
            await endpoint.stop()
            let down = try await origin.request(.DELETE, path, headers: bearer("admin"))
            #expect(down.status == 503 && down.header("Retry-After") == "1")
            #expect(down.text.contains("unreachable"))
            // Authentication off, to look: the stream is as it was.
            try await origin.server.reloadAuth(AuthSettings())
            #expect(try await origin.request(.GET, path + "?offset=-1").text == "kept")
        }
    }

    // A service that does not answer within forward_auth_timeout: 503, and nothing changes.
    // (It never answers, so the outcome does not depend on how fast anything is.)
    @Test func aSilentServiceTimesOut() async throws {
        try await FakeAuthEndpoint.with(policy) { endpoint in
            try await withOrigin { (origin: Origin) async throws in
                let path = pubPath()
                #expect(try await origin.request(.PUT, path, headers: text, text: "kept").status == 201)
                var settings = AuthSettings()
                settings.forwardAuthURL = try ForwardAuthEndpoint(url: endpoint.url())
                settings.forwardAuthTimeout = .milliseconds(100)
                try await origin.server.reloadAuth(settings)
                endpoint.hold()
                let silent = try await origin.request(.POST, path, headers: bearer("admin") + text, text: "x")
                #expect(silent.status == 503 && silent.header("Retry-After") == "1")
                #expect(silent.text.contains("in time"))
                try await origin.server.reloadAuth(AuthSettings())
                #expect(try await origin.request(.GET, path + "?offset=-1").text == "kept")
            }
        }
    }

    // A decision is reused for the same credential, scope and path (whatever the query); a
    // different credential or path is asked again; identical checks in flight share one call.
    @Test func decisionsAreCachedPerCredentialAndPath() async throws {
        try await withForwardAuth { (origin: Origin, endpoint: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("writer") + text, text: "a").status == 201)
            let afterCreate = endpoint.hits
            #expect(try await origin.request(.POST, path, headers: bearer("writer") + text, text: "b").status == 204)
            #expect(try await origin.request(.POST, path, headers: bearer("writer") + text, text: "c").status == 204)
            #expect(endpoint.hits == afterCreate + 1)
            #expect(try await origin.request(.GET, path + "?offset=-1", headers: bearer("reader")).text == "abc")
            #expect(endpoint.hits == afterCreate + 2)
            #expect(try await origin.request(.HEAD, path, headers: bearer("reader")).status == 200)
            #expect(endpoint.hits == afterCreate + 3)
            // A refusal is remembered too.
            #expect(try await origin.request(.POST, path, headers: bearer("reader") + text, text: "x").status == 403)
            #expect(try await origin.request(.POST, path, headers: bearer("reader") + text, text: "x").status == 403)
            #expect(endpoint.hits == afterCreate + 4)
            let other = pubPath()
            #expect(try await origin.request(.PUT, other, headers: bearer("writer") + text).status == 201)
            #expect(endpoint.hits == afterCreate + 5)
            let counts = origin.server.metrics.registry.emitToString()
            #expect(counts.contains("ds_origin_forward_auth_checks_total{result=\"forbidden\"} 1"))
            #expect(counts.contains("ds_origin_forward_auth_cache_hits_total 2"))
            // Both refusals are counted as requests refused, the remembered one too.
            #expect(counts.contains("ds_origin_auth_refusals_total{reason=\"forbidden\"} 2"))
        }
    }

    // Writes the edge does not collapse: three identical appends in flight at once cost one call.
    @Test func identicalChecksInFlightShareOneCall() async throws {
        try await withForwardAuth { (origin: Origin, endpoint: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("admin") + text).status == 201)
            let before = endpoint.hits
            endpoint.hold()
            async let first = origin.request(.POST, path, headers: bearer("writer") + text, text: "x")
            async let second = origin.request(.POST, path, headers: bearer("writer") + text, text: "x")
            async let third = origin.request(.POST, path, headers: bearer("writer") + text, text: "x")
            try await waitUntil { origin.server.metrics.registry.emitToString().contains("ds_origin_forward_auth_joined_total 2") }
            endpoint.release()
            let statuses = try await [first.status, second.status, third.status]
            #expect(statuses == [204, 204, 204])
            #expect(endpoint.hits == before + 1)
        }
    }

    // What the service is told: the request's method, target, host and credential, the scope
    // and stream it needs, and nothing a client sent in X-Forwarded-* itself.
    @Test func theServiceSeesTheRequest() async throws {
        try await withForwardAuth(metricsScope: .admin) { (origin: Origin, endpoint: FakeAuthEndpoint) async throws in
            let path = pubPath()
            #expect(try await origin.request(.PUT, path, headers: bearer("writer") + text).status == 201)
            let read = try await origin.request(
                .GET, path + "?offset=-1", headers: bearer("reader") + [("X-Forwarded-Host", "spoofed.test"), ("X-Forwarded-Uri", "/other")])
            #expect(read.status == 200)
            let seen = try #require(endpoint.seen.last)
            #expect(seen.method == .GET && seen.uri == "/auth")
            #expect(seen.header("Authorization") == "Bearer reader")
            #expect(seen.header("X-Forwarded-Method") == "GET")
            #expect(seen.header("X-Durable-Streams-Scope") == "read")
            #expect(seen.header("X-Durable-Streams-Stream") == String(path.dropFirst("/v1/stream/".count)))
            #expect(seen.headers["X-Forwarded-Host"].count == 1 && seen.headers["X-Forwarded-Uri"].count == 1)
            #expect(seen.header("X-Forwarded-Host") != "spoofed.test")
            #expect(seen.header("Cookie") == nil)
            guard !Topology.throughEdge else { return }  // then the edge's upstream request is what the origin sees
            #expect(seen.header("X-Forwarded-Uri") == path + "?offset=-1")
            #expect(seen.header("X-Forwarded-Host") == "127.0.0.1:\(origin.port)")
            // A fork asks for write on itself and read on its source.
            let fork = pubPath()
            let forked = try await origin.request(.PUT, fork, headers: bearer("admin") + [("Stream-Forked-From", path)])
            #expect(forked.status == 201)
            let asked = endpoint.seen.suffix(2)
            #expect(asked.map { $0.header("X-Durable-Streams-Scope") } == ["write", "read"])
            #expect(asked.map { $0.header("X-Forwarded-Method") } == ["PUT", "PUT"])
            // The server's own endpoints are the server as a whole: no stream named.
            #expect(try await origin.request(.GET, "/metrics", headers: bearer("writer")).status == 403)
            #expect(endpoint.seen.last?.header("X-Durable-Streams-Scope") == "admin")
            #expect(endpoint.seen.last?.header("X-Durable-Streams-Stream") == nil)
            #expect(try await origin.request(.GET, "/metrics", headers: bearer("admin")).status == 200)
            #expect(try await origin.request(.GET, "/healthz").status == 200)
        }
    }

    // Preflights never reach the service.
    @Test func publicRequestsAreNotChecked() async throws {
        try await withForwardAuth { (origin: Origin, endpoint: FakeAuthEndpoint) async throws in
            let preflight = try await origin.request(
                .OPTIONS, pubPath(), headers: [("Origin", "https://app.test"), ("Access-Control-Request-Method", "POST")])
            #expect(preflight.status < 300)
            #expect(endpoint.hits == 0)
        }
    }

    // A reload turns forward auth on and off; each load starts with no remembered decisions.
    @Test func reloadSwitchesForwardAuth() async throws {
        try await FakeAuthEndpoint.with(policy) { endpoint in
            try await withOrigin { (origin: Origin) async throws in
                let path = pubPath()
                #expect(try await origin.request(.PUT, path, headers: text).status == 201)
                var settings = AuthSettings()
                settings.forwardAuthURL = try ForwardAuthEndpoint(url: endpoint.url())
                settings.forwardAuthTimeout = .seconds(30)  // a loaded machine is slow, not down
                try await origin.server.reloadAuth(settings)
                #expect(try await origin.request(.POST, path, headers: text, text: "x").status == 401)
                #expect(try await origin.request(.POST, path, headers: bearer("writer") + text, text: "a").status == 204)
                try await origin.server.reloadAuth(settings)
                #expect(try await origin.request(.POST, path, headers: bearer("writer") + text, text: "b").status == 204)
                #expect(endpoint.hits == 3)
                try await origin.server.reloadAuth(AuthSettings())
                #expect(try await origin.request(.POST, path, headers: text, text: "c").status == 204)
                #expect(try await origin.request(.GET, path + "?offset=-1").text == "abc")
            }
        }
    }
}

@Suite("Forward auth settings in configuration files")
struct ForwardAuthConfigurationTests {
    @Test func theOriginReadsThem() throws {
        var configuration = OriginConfiguration()
        try configuration.apply(ConfigurationFile(text: """
            forward_auth_url = "http://127.0.0.1:9000/auth"
            forward_auth_cache = "0s"
            forward_auth_timeout = "1s"
            """, path: "origin.conf"))
        #expect(configuration.auth.forwardAuthURL?.description == "http://127.0.0.1:9000/auth")
        #expect(configuration.auth.forwardAuthCache == .zero && configuration.auth.forwardAuthTimeout == .seconds(1))
        #expect(throws: (any Error).self) {
            try configuration.apply(ConfigurationFile(text: "forward_auth_url = \"https://auth.test/\"", path: "origin.conf"))
        }
    }

    // Not built at the edge yet: refused there, not ignored.
    @Test func theEdgeRefusesThem() async throws {
        var configuration = EdgeConfiguration()
        #expect(throws: (any Error).self) {
            try configuration.apply(ConfigurationFile(text: "forward_auth_url = \"http://127.0.0.1:9000/auth\"", path: "edge.conf"))
        }
        var settings = AuthSettings()
        settings.forwardAuthURL = ForwardAuthEndpoint(host: "127.0.0.1", port: 9000, target: "/")
        let edge = EdgeServer(configuration: EdgeConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
        await #expect(throws: AuthConfigurationError.self) { try await edge.reloadAuth(settings, upstreamAuthorizationFile: nil) }
    }
}
