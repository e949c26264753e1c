@testable import EdgeNode
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ServerSupport
import StreamAuth
import TestSupport
import Testing

/// An origin, an edge in front of it, and a second tiny HTTP server (the "app") behind one
/// `[[route]]` of the edge, all on ephemeral ports.
private func withRoute<T>(
    prefix: String = "/api/",
    tls: NIOSSLContext? = nil,
    route configureRoute: (inout EdgeRoute) -> Void = { _ in },
    edge configureEdge: (inout EdgeConfiguration) -> Void = { _ in },
    _ responder: @escaping FakeUpstream.Responder,
    _ body: (EdgeTopology, FakeUpstream) async throws -> T
) async throws -> T {
    let app = try await FakeUpstream.start(tls: tls, responder)
    do {
        let result = try await withEdges(edge: { configuration in
            var route = EdgeRoute(pathPrefix: prefix, upstreamHost: "127.0.0.1", upstreamPort: app.port)
            configureRoute(&route)
            configuration.routes = [route]
            configureEdge(&configuration)
        }) { try await body($0, app) }
        await app.stop()
        return result
    } catch {
        await app.stop()
        throw error
    }
}

/// A value from the edge's `/metrics`: the sum over the lines of `name` that carry `label`
/// (`""`: the one line of a metric without labels).
private func metric(_ topology: EdgeTopology, _ name: String, _ label: String) async throws -> Int {
    let text = try await topology.request(.GET, "/metrics").text
    return text.split(separator: "\n")
        .filter { ($0.hasPrefix(name + "{") && $0.contains(label)) || (label.isEmpty && $0.hasPrefix(name + " ")) }
        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
}

@Suite("Edge: [[route]] reverse proxy")
struct EdgeRouteTests {
    @Test func aRoutedGetReachesTheRouteUpstreamAndItsAnswerComesBack() async throws {
        try await withRoute({ request in
            FakeResponse(status: .ok, headers: [("Content-Type", "application/json"), ("X-App", "yes")], body: "{\"path\":\"\(request.uri)\"}")
        }) { edges, app in
            let response = try await edges.request(.GET, "/api/items?q=1&r=%20", headers: [("X-Custom", "abc"), ("Accept", "application/json")])
            #expect(response.status == 200)
            #expect(response.text == "{\"path\":\"/api/items?q=1&r=%20\"}")
            #expect(response.header("X-App") == "yes")
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.header("X-Cache") == "PASS")
            let received = try #require(app.requests.first)
            #expect(received.method == .GET)
            #expect(received.uri == "/api/items?q=1&r=%20")
            #expect(received.header("X-Custom") == "abc")
            #expect(received.header("Accept") == "application/json")
            #expect(received.header("Via") == "1.1 durable-streams-edge")
            // The client's Host travels as X-Forwarded-Host, as for the edge's own upstream.
            #expect(received.header("X-Forwarded-Host") == "127.0.0.1:\(edges.port)")
            #expect(received.header("Host") == "127.0.0.1:\(app.port)")
            #expect(app.requests.count == 1)
            // HEAD says the length of what GET would send.
            let head = try await edges.request(.HEAD, "/api/items?q=1&r=%20")
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == String(response.body.count))
            #expect(head.body.isEmpty)
            #expect(app.requests(.HEAD).count == 1)
        }
    }

    /// An https:// route upstream: checked against the configured CA and name, like the stream
    /// upstream; one the edge cannot verify is 502 and never reached in the clear.
    @Test func anHTTPSRouteUpstreamIsVerified() async throws {
        let ca = try TestCertificateAuthority(serverName: "app.internal", namesLoopback: false)
        defer { ca.remove() }
        let answer: FakeUpstream.Responder = { request in FakeResponse(status: .ok, body: "secure \(request.uri)") }
        try await withRoute(tls: try ca.serverContext(), route: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "app.internal")
        }, answer) { edges, app in
            let response = try await edges.request(.GET, "/api/x")
            #expect(response.status == 200)
            #expect(response.text == "secure /api/x")
            #expect(app.requests.count == 1)
        }
        // Another name than the certificate's: refused before any request is sent.
        try await withRoute(tls: try ca.serverContext(), route: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "other.internal")
        }, answer) { edges, app in
            let response = try await edges.request(.GET, "/api/x")
            #expect(response.status == 502)
            #expect(app.requests.isEmpty)
        }
        // The system's trust store does not know the test CA.
        try await withRoute(tls: try ca.serverContext(), route: {
            $0.upstreamTLS = UpstreamTLSSettings(serverName: "app.internal")
        }, answer) { edges, app in
            let response = try await edges.request(.GET, "/api/x")
            #expect(response.status == 502)
            #expect(app.requests.isEmpty)
        }
    }

    @Test func aRoutedPostCarriesItsBodyAndHeaders() async throws {
        try await withRoute({ request in
            FakeResponse(status: .created, headers: [("Location", "/api/items/7")], body: "got \(request.body.count) bytes")
        }) { edges, app in
            let response = try await edges.request(
                .POST, "/api/items", headers: [("Content-Type", "text/plain"), ("Authorization", "Bearer app-token")], body: "hello route")
            #expect(response.status == 201)
            #expect(response.text == "got 11 bytes")
            #expect(response.header("Location") == "/api/items/7")
            #expect(response.header("X-Cache") == "PASS")
            let received = try #require(app.requests(.POST).first)
            #expect(received.body == "hello route")
            #expect(received.header("Content-Type") == "text/plain")
            #expect(received.header("Content-Length") == "11")
            // Without credentials = verify the client's credential is the app's business.
            #expect(received.header("Authorization") == "Bearer app-token")
            // Other methods pass as they are.
            let deleted = try await edges.request(.DELETE, "/api/items/7")
            #expect(deleted.status == 201)
            #expect(app.requests(.DELETE).map(\.uri) == ["/api/items/7"])
        }
    }

    @Test func hopByHopHeadersAreStrippedBothWays() async throws {
        try await withRoute({ _ in
            FakeResponse(status: .ok, headers: [
                ("Connection", "X-Answer-Hop"), ("X-Answer-Hop", "1"), ("Keep-Alive", "timeout=5"), ("Proxy-Authenticate", "Basic"),
                ("Trailer", "X-Checksum"), ("X-Cache", "HIT"), ("Age", "100"), ("X-End-To-End", "kept"),
            ], body: "ok")
        }) { edges, app in
            let response = try await edges.request(.GET, "/api/hop", headers: [
                ("Connection", "X-Request-Hop"), ("X-Request-Hop", "secret"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                ("Proxy-Authorization", "Basic eDp5"), ("X-Request-Kept", "yes"),
            ])
            #expect(response.status == 200)
            #expect(response.text == "ok")
            for name in ["X-Answer-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer"] {
                #expect(response.header(name) == nil, "\(name) passed to the client")
            }
            #expect(response.header("X-End-To-End") == "kept")
            // End to end, and what tells caches further down how old the answer is.
            #expect(response.header("Age") == "100")
            // The edge labels the answer itself.
            #expect(response.headers["X-Cache"] == ["PASS"])
            let received = try #require(app.requests.first)
            for name in ["X-Request-Hop", "Keep-Alive", "TE", "Proxy-Authorization"] {
                #expect(received.header(name) == nil, "\(name) passed to the app")
            }
            #expect(received.header("Connection").map { $0.lowercased().contains("x-request-hop") } != true)
            #expect(received.header("X-Request-Kept") == "yes")
        }
    }

    @Test func answersAreNotCachedByDefault() async throws {
        try await withRoute({ request in
            FakeResponse(status: .ok, headers: [("Content-Type", "text/plain")], body: "answer \(request.uri)")
        }) { edges, app in
            for _ in 0..<2 {
                let response = try await edges.request(.GET, "/api/plain")
                #expect(response.status == 200)
                #expect(response.header("X-Cache") == "PASS")
            }
            #expect(app.requests(.GET, path: "/api/plain").count == 2)
        }
    }

    /// Only what the answer declares shareable, to requests without anything personal.
    @Test func aPublicAnswerWithAMaxAgeIsCachedUntilItExpires() async throws {
        let clock = ManualClock()
        try await withRoute(edge: { $0.clock = { clock.now() } }, { _ in
            FakeResponse(status: .ok, headers: [("Cache-Control", "public, max-age=60"), ("ETag", "\"v1\""), ("Age", "10")], body: "shared")
        }) { edges, app in
            let first = try await edges.request(.GET, "/api/shared?x=1")
            #expect(first.header("X-Cache") == "MISS")
            #expect(first.text == "shared")
            #expect(first.header("Age") == "10")
            let second = try await edges.request(.GET, "/api/shared?x=1")
            #expect(second.header("X-Cache") == "HIT")
            #expect(second.text == "shared")
            #expect(second.header("Cache-Control") == "public, max-age=60")
            // Counted from when the app made it: the Age it arrived with, plus none elapsed.
            #expect(second.header("Age") == "10")
            #expect(app.requests(.GET, path: "/api/shared").count == 1)

            // The whole target is the key: another query is another answer.
            #expect(try await edges.request(.GET, "/api/shared?x=2").header("X-Cache") == "MISS")
            // A client that has it gets a 304 from the cache.
            let conditional = try await edges.request(.GET, "/api/shared?x=1", headers: [("If-None-Match", "\"v1\"")])
            #expect(conditional.status == 304)
            #expect(conditional.header("X-Cache") == "HIT")
            // Requests that may get a personal answer pass, and are not answered from the cache.
            for header in [("Authorization", "Bearer t"), ("Cookie", "s=1"), ("Cache-Control", "no-cache")] {
                #expect(try await edges.request(.GET, "/api/shared?x=1", headers: [header]).header("X-Cache") == "PASS")
            }
            #expect(try await edges.request(.HEAD, "/api/shared?x=1").header("X-Cache") == "PASS")
            #expect(app.requests(.GET, path: "/api/shared").count == 5)

            // Fresh for 60 s from when it was made (10 s before it arrived): 49 s on, still a hit.
            clock.advance(by: .seconds(49))
            let later = try await edges.request(.GET, "/api/shared?x=1")
            #expect(later.header("X-Cache") == "HIT")
            #expect(later.header("Age") == "59")
            clock.advance(by: .seconds(1))
            #expect(try await edges.request(.GET, "/api/shared?x=1").header("X-Cache") == "MISS")
            #expect(app.requests(.GET, path: "/api/shared").count == 6)

            #expect(try await metric(edges, "ds_edge_requests_total", #"class="route",cache="HIT""#) == 3)
            #expect(try await metric(edges, "ds_edge_requests_total", #"class="route",cache="MISS""#) == 3)
            #expect(try await metric(edges, "ds_edge_route_cache_entries", "") == 2)
        }
    }

    /// Every answer that does not say it may be shared goes to the app each time.
    @Test func answersThatDoNotSaySoAreNotCached() async throws {
        let answers: [String: FakeResponse] = [
            "/api/private": FakeResponse(headers: [("Cache-Control", "private, max-age=60")], body: "x"),
            "/api/not-public": FakeResponse(headers: [("Cache-Control", "max-age=60")], body: "x"),
            "/api/no-lifetime": FakeResponse(headers: [("Cache-Control", "public")], body: "x"),
            "/api/zero": FakeResponse(headers: [("Cache-Control", "public, max-age=0")], body: "x"),
            "/api/s-maxage-zero": FakeResponse(headers: [("Cache-Control", "public, max-age=60, s-maxage=0")], body: "x"),
            "/api/no-store": FakeResponse(headers: [("Cache-Control", "public, max-age=60, no-store")], body: "x"),
            "/api/cookie": FakeResponse(headers: [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "s=1")], body: "x"),
            "/api/vary": FakeResponse(headers: [("Cache-Control", "public, max-age=60"), ("Vary", "Accept-Encoding, Cookie")], body: "x"),
            "/api/not-found": FakeResponse(status: .notFound, headers: [("Cache-Control", "public, max-age=60")], body: "x"),
            "/api/too-old": FakeResponse(headers: [("Cache-Control", "public, max-age=60"), ("Age", "60")], body: "x"),
        ]
        try await withRoute({ request in answers[request.path] ?? FakeResponse(status: .internalServerError) }) { edges, app in
            for path in answers.keys.sorted() {
                for _ in 0..<2 {
                    let response = try await edges.request(.GET, path)
                    #expect(response.header("X-Cache") == "PASS", "\(path)")
                }
                #expect(app.requests(.GET, path: path).count == 2, "\(path)")
            }
            // The one Vary allowed: the request's Accept-Encoding is part of the key.
            app.setResponder { _ in
                FakeResponse(headers: [("Cache-Control", "public, s-maxage=30"), ("Vary", "accept-encoding")], body: "y")
            }
            var outcomes: [String?] = []
            for headers in [[("Accept-Encoding", "gzip")], [], [("Accept-Encoding", "gzip")]] {
                outcomes.append(try await edges.request(.GET, "/api/enc", headers: headers).header("X-Cache"))
            }
            #expect(outcomes == ["MISS", "MISS", "HIT"])
            #expect(app.requests(.GET, path: "/api/enc").count == 2)
        }
    }

    @Test func aRouteUpstreamThatIsDownIs502AndStreamsCarryOn() async throws {
        try await withRoute({ _ in FakeResponse(body: "up") }) { edges, app in
            #expect(try await edges.request(.GET, "/api/x").text == "up")
            await app.stop()
            let down = try await edges.request(.GET, "/api/x")
            #expect(down.status == 502)
            #expect(down.text == "upstream unavailable\n")
            #expect(down.header("X-Cache") == "PASS")
            #expect(try await metric(edges, "ds_edge_route_upstream_errors_total", "") == 1)
            #expect(try await metric(edges, "ds_edge_upstream_errors_total", "") == 0)
            // The edge's own upstream is another matter.
            let path = "/v1/stream/route-down-\(UInt64.random(in: 0...UInt64.max))"
            #expect(try await edges.request(.PUT, path, headers: [("Content-Type", "text/plain")]).status == 201)
            #expect(try await edges.request(.POST, path, headers: [("Content-Type", "text/plain")], body: "still here").status == 204)
            #expect(try await edges.request(.GET, path + "?offset=-1").text == "still here")
        }
    }

    @Test func aRouteUpstreamThatDoesNotAnswerInTimeIs504() async throws {
        let gate = FakeGate()
        try await withRoute(route: { $0.timeout = .milliseconds(200) }, { _ in FakeResponse(body: "late").held(by: gate) }) { edges, _ in
            let response = try await edges.request(.GET, "/api/slow")
            #expect(response.status == 504)
            #expect(response.text == "upstream timed out\n")
            gate.open()
        }
    }

    /// Route answers are buffered whole: beyond `max_response_bytes` the client gets 502, and
    /// the route keeps working for answers within it.
    @Test(arguments: [nil, 100] as [Int?])
    func anAnswerBeyondTheBoundIs502(chunkBytes: Int?) async throws {
        try await withRoute(route: { $0.maxResponseBytes = 1000 }, { request in
            var response = FakeResponse(body: String(repeating: "x", count: request.path == "/api/huge" ? 5000 : 1000))
            response.chunkBytes = chunkBytes
            return response
        }) { edges, _ in
            let huge = try await edges.request(.GET, "/api/huge")
            #expect(huge.status == 502)
            #expect(huge.text == "upstream answer too large\n")
            let fits = try await edges.request(.GET, "/api/fits")
            #expect(fits.status == 200)
            #expect(fits.body.count == 1000)
        }
    }

    /// A catch-all route takes every path but the edge's own: streams and its pages keep priority.
    @Test func aCatchAllRouteLeavesStreamsAndTheEdgesPagesAlone() async throws {
        try await withRoute(prefix: "/", { request in FakeResponse(body: "app \(request.path)") }) { edges, app in
            let path = "/v1/stream/catch-all-\(UInt64.random(in: 0...UInt64.max))"
            #expect(try await edges.request(.PUT, path, headers: [("Content-Type", "text/plain")]).status == 201)
            #expect(try await edges.request(.POST, path, headers: [("Content-Type", "text/plain")], body: "event").status == 204)
            let read = try await edges.request(.GET, path + "?offset=-1")
            #expect(read.text == "event")
            #expect(read.header("X-Cache") == "MISS")
            #expect(try await edges.request(.GET, "/metrics").text.contains("ds_edge_requests_total"))
            #expect(try await edges.request(.GET, "/__edge/stats").text.contains("routeCache"))
            #expect(try await edges.request(.GET, "/readyz").status == 200)
            #expect(try await edges.request(.GET, "/index.html").text == "app /index.html")
            #expect(app.requests.map(\.path) == ["/index.html"])
        }
    }
}

/// With `credentials = verify`, a route path is an "other path": it needs an admin credential,
/// and the client's own credential (never the edge's upstream one) goes to the route.
@Suite("Edge: [[route]] with credentials = verify")
struct EdgeRouteVerifyTests {
    static let readKey = "route-read-key-0123456789"
    static let adminKey = "route-admin-key-0123456789"
    static let edgeKey = "route-edge-key-0123456789"

    @Test func routesNeedAdminAndKeepTheClientsCredential() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-route-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            [[key]]
            name = "edge"
            secret = "\(Self.edgeKey)"
            scope = "read"

            [[key]]
            name = "reader"
            secret = "\(Self.readKey)"
            scope = "read"

            [[key]]
            name = "admin"
            secret = "\(Self.adminKey)"
            scope = "admin"
            """.write(toFile: directory + "/keys.toml", atomically: true, encoding: .utf8)
        try (Self.edgeKey + "\n").write(toFile: directory + "/upstream.key", atomically: true, encoding: .utf8)
        var auth = AuthSettings()
        auth.apiKeysFile = directory + "/keys.toml"
        try await withRoute(edge: {
            $0.credentials = .verify
            $0.auth = auth
            $0.upstreamAuthorizationFile = directory + "/upstream.key"
        }, { _ in FakeResponse(headers: [("Cache-Control", "public, max-age=60")], body: "app") }) { edges, app in
            #expect(try await edges.request(.GET, "/api/x").status == 401)
            #expect(try await edges.request(.GET, "/api/x", headers: [("Authorization", "Bearer \(Self.readKey)")]).status == 403)
            #expect(app.requests.isEmpty)
            for _ in 0..<2 {
                let allowed = try await edges.request(.GET, "/api/x", headers: [("Authorization", "Bearer \(Self.adminKey)")])
                #expect(allowed.status == 200)
                #expect(allowed.text == "app")
                // Answered on the strength of a credential: never a shared cache entry.
                #expect(allowed.header("X-Cache") == "PASS")
                #expect(allowed.header("Cache-Control") == "private, max-age=60")
            }
            #expect(app.requests.map { $0.header("Authorization") } == ["Bearer \(Self.adminKey)", "Bearer \(Self.adminKey)"])
            // Stream reads still go upstream with the edge's credential.
            let path = "/v1/stream/route-verify-\(UInt64.random(in: 0...UInt64.max))"
            let admin = [("Authorization", "Bearer \(Self.adminKey)")]
            #expect(try await edges.request(.PUT, path, headers: admin + [("Content-Type", "text/plain")]).status == 201)
            #expect(try await edges.request(.GET, path + "?offset=-1", headers: [("Authorization", "Bearer \(Self.readKey)")]).status == 200)
        }
    }
}
