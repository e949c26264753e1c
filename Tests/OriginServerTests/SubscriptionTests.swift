import Foundation
import NIOHTTP1
import OriginServer
import TestSupport
import Testing

/// JSON helpers for the control API's answers.
extension TestResponse {
    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

private func jsonBody(_ object: [String: Any]) -> [UInt8] {
    Array(try! JSONSerialization.data(withJSONObject: object))
}

private let jsonType = [("Content-Type", "application/json")]

extension Origin {
    func control(_ method: HTTPMethod, _ path: String, _ object: [String: Any]? = nil, bearer: String? = nil) async throws -> TestResponse {
        var headers = jsonType
        if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
        return try await request(method, "/v1/stream/__ds/" + path, headers: headers, body: object.map(jsonBody))
    }

    /// The JSON messages of a JSON stream, read from the beginning.
    func messages(_ path: String) async throws -> [[String: Any]] {
        let response = try await request(.GET, path + "?offset=-1")
        return ((try? JSONSerialization.jsonObject(with: Data(response.body))) as? [[String: Any]]) ?? []
    }
}

private func uniqueID(_ prefix: String) -> String { "\(prefix)-\(UInt64.random(in: 0...UInt64.max))" }

@Suite("Subscriptions: the reserved control API (§6)")
struct SubscriptionResourceTests {
    @Test func reservedPathsAreNeverStreams() async throws {
        try await withOrigin { origin in
            for path in ["/v1/stream/__ds/subscriptions/x/extra/more", "/v1/stream/__ds/anything", "/v1/stream/%5F%5Fds/anything", "/v1/stream/__ds"] {
                let put = try await origin.request(.PUT, path, headers: [("Content-Type", "text/plain")], text: "data")
                #expect(put.status == 404, "\(path): \(put.status)")
                #expect(put.header("Cache-Control") == "no-store")
                #expect(try await origin.request(.GET, path + "?offset=-1").status == 404)
            }
            #expect(origin.server.store.streamCount == 0)
            // Names that merely start alike are ordinary streams.
            try await origin.create("/v1/stream/__dsx/s")
        }
        try await withOrigin(configure: { $0.subscriptions = false }) { origin in
            let put = try await origin.control(.PUT, "subscriptions/a", ["type": "pull-wake", "pattern": "x/*", "wake_stream": "w"])
            #expect(put.status == 404)
            #expect(put.text.contains("reserved"))
            #expect(origin.server.store.streamCount == 0)
        }
    }

    @Test func createReconfirmAndConflict() async throws {
        try await withOrigin { origin in
            let id = uniqueID("sub")
            let config: [String: Any] = ["type": "pull-wake", "pattern": "events/*", "streams": ["b/2", "a/1", "a/1"], "wake_stream": "wake/p",
                                         "lease_ttl_ms": 2000, "description": "d"]
            let created = try await origin.control(.PUT, "subscriptions/\(id)", config)
            #expect(created.status == 201)
            #expect(created.header("Cache-Control") == "no-store")
            #expect(created.json["id"] as? String == id && created.json["subscription_id"] as? String == id)
            #expect(created.json["status"] as? String == "active")
            #expect(created.json["lease_ttl_ms"] as? Int == 2000)
            let links = try #require(created.json["streams"] as? [[String: Any]])
            #expect(links.map { $0["path"] as? String } == ["a/1", "b/2"], "normalised: sorted, no repeats")
            // The same configuration written another way re-confirms.
            var same = config
            same["streams"] = ["a/1", "b/2"]
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", same).status == 200)
            var different = config
            different["lease_ttl_ms"] = 3000
            let conflict = try await origin.control(.PUT, "subscriptions/\(id)", different)
            #expect(conflict.status == 409 && conflict.errorCode == "SUBSCRIPTION_ALREADY_EXISTS")

            let read = try await origin.control(.GET, "subscriptions/\(id)")
            #expect(read.status == 200 && read.json["type"] as? String == "pull-wake" && read.json["wake_stream"] as? String == "wake/p")
            #expect(read.json["pattern"] as? String == "events/*")
            #expect(try await origin.control(.DELETE, "subscriptions/\(id)").status == 204)
            let gone = try await origin.control(.GET, "subscriptions/\(id)")
            #expect(gone.status == 404 && gone.errorCode == "SUBSCRIPTION_NOT_FOUND")
        }
    }

    @Test(arguments: [
        (["pattern": "a/*", "wake_stream": "w"], "INVALID_REQUEST"),
        (["type": "email", "pattern": "a/*"], "INVALID_REQUEST"),
        (["type": "pull-wake", "wake_stream": "w"], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a/*"], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a//b", "wake_stream": "w"], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a/*", "wake_stream": "w", "lease_ttl_ms": 999], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a/*", "wake_stream": "w", "lease_ttl_ms": 600_001], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a/*", "wake_stream": "w", "lease_ttl_ms": 1e300], "INVALID_REQUEST"),
        (["type": "pull-wake", "pattern": "a/*", "wake_stream": "w", "lease_ttl_ms": 1500.5], "INVALID_REQUEST"),
        (["type": "pull-wake", "streams": ["__ds/x"], "wake_stream": "w"], "INVALID_REQUEST"),
        (["type": "pull-wake", "streams": ["../etc"], "wake_stream": "w"], "INVALID_REQUEST"),
        (["type": "webhook", "pattern": "a/*"], "INVALID_REQUEST"),
        (["type": "webhook", "pattern": "a/*", "webhook": ["url": "http://10.0.0.1/hook"]], "WEBHOOK_URL_REJECTED"),
        (["type": "webhook", "pattern": "a/*", "webhook": ["url": "http://169.254.169.254/latest"]], "WEBHOOK_URL_REJECTED"),
        (["type": "webhook", "pattern": "a/*", "webhook": ["url": "ftp://example.com/"]], "WEBHOOK_URL_REJECTED"),
    ] as [([String: any Sendable], String)])
    func invalidConfigurationsAreRefusedWithTheirCode(config: [String: any Sendable], code: String) async throws {
        try await withOrigin { origin in
            let refused = try await origin.control(.PUT, "subscriptions/\(uniqueID("bad"))", config)
            #expect(refused.status == 400, "\(config): \(refused.status) \(refused.text)")
            #expect(refused.errorCode == code, "\(config): \(refused.text)")
            #expect(try await origin.request(.PUT, "/v1/stream/__ds/subscriptions/x", headers: jsonType, text: "{not json").errorCode == "INVALID_REQUEST")
            #expect(try await origin.request(.PUT, "/v1/stream/__ds/subscriptions/bad%20id", headers: jsonType, text: "{}").status == 400)
        }
    }

    /// Hostile bodies get a 400 with a reason, and the server goes on serving.
    @Test func hostileBodiesAreRefused() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let deep = String(repeating: "[", count: 200_000)
            #expect(try await origin.request(.PUT, "/v1/stream/__ds/subscriptions/x", headers: jsonType, text: deep).status == 400)
            let nested = #"{"type":"pull-wake","wake_stream":"w","streams":"# + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "}"
            #expect(try await origin.request(.PUT, "/v1/stream/__ds/subscriptions/x", headers: jsonType, text: nested).status == 400)
            let huge = #"{"wake_id":"w","generation":1e300,"acks":[{"stream":"s","offset":"99999999999999999999_1"}]}"#
            #expect(try await origin.request(.POST, "/v1/stream/__ds/subscriptions/x/ack", headers: jsonType, text: huge).status == 400)
            let oversized = [UInt8](repeating: UInt8(ascii: " "), count: (1 << 20) + 1)
            #expect(try await origin.request(.PUT, "/v1/stream/__ds/subscriptions/x", headers: jsonType, body: oversized).status == 413)
            #expect(try await origin.request(.GET, "/healthz").status == 200)
        }
    }

    @Test func theKeySetIsPublishedAndCacheable() async throws {
        try await withOrigin { origin in
            let jwks = try await origin.control(.GET, "jwks.json")
            #expect(jwks.status == 200)
            #expect(jwks.header("Content-Type") == "application/jwk-set+json")
            #expect(jwks.header("Cache-Control") == "public, max-age=300")
            let keys = try #require(jwks.json["keys"] as? [[String: Any]])
            #expect(keys.count == 1)
            #expect(keys[0]["kty"] as? String == "OKP" && keys[0]["crv"] as? String == "Ed25519" && keys[0]["alg"] as? String == "EdDSA")
            #expect((keys[0]["kid"] as? String)?.hasPrefix("ds_") == true)
            #expect(keys[0]["d"] == nil, "never the private key")
        }
    }

    @Test func explicitLinksAreAddedAndRemovedAndGlobLinksStay() async throws {
        try await withOrigin { origin in
            try await origin.create("/v1/stream/manual/a", body: "x")
            let id = uniqueID("sub")
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", ["type": "pull-wake", "pattern": "g/*", "streams": ["manual/a"], "wake_stream": "w"]).status == 201)
            try await origin.create("/v1/stream/g/1", body: "")
            #expect(try await origin.control(.POST, "subscriptions/\(id)/streams", ["streams": ["manual/b", "g/1"]]).status == 204)
            #expect(try await origin.control(.POST, "subscriptions/\(id)/streams", ["streams": ["manual/b"]]).status == 204, "idempotent")
            var links = try #require(try await origin.control(.GET, "subscriptions/\(id)").json["streams"] as? [[String: Any]])
            #expect(links.map { "\($0["path"]!):\($0["link_type"]!)" } == ["g/1:explicit", "manual/a:explicit", "manual/b:explicit"])
            // The existing stream is linked at its tail: no history replayed.
            let tail = try await origin.request(.HEAD, "/v1/stream/manual/a").header("Stream-Next-Offset")
            #expect(links[1]["acked_offset"] as? String == tail)

            #expect(try await origin.request(.DELETE, "/v1/stream/__ds/subscriptions/\(id)/streams/\("manual%2Fb")").status == 204)
            #expect(try await origin.request(.DELETE, "/v1/stream/__ds/subscriptions/\(id)/streams/g%2F1").status == 204)
            #expect(try await origin.request(.DELETE, "/v1/stream/__ds/subscriptions/\(id)/streams/absent").status == 204, "idempotent")
            links = try #require(try await origin.control(.GET, "subscriptions/\(id)").json["streams"] as? [[String: Any]])
            #expect(links.map { "\($0["path"]!):\($0["link_type"]!)" } == ["g/1:glob", "manual/a:explicit"], "the glob link stays")
            #expect(try await origin.control(.POST, "subscriptions/missing/streams", ["streams": ["a"]]).errorCode == "SUBSCRIPTION_NOT_FOUND")
        }
    }
}

@Suite("Subscriptions: pull-wake workers (§7.2, §7.3)")
struct PullWakeTests {
    @Test func wakeClaimAckAndReleaseWithFencing() async throws {
        try await withOrigin { origin in
            let id = uniqueID("pull")
            try await origin.create("/v1/stream/wake/pool", type: "application/json", body: "[]")
            try await origin.create("/v1/stream/events/old", type: "application/json", body: #"{"n":0}"#)
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", ["type": "pull-wake", "pattern": "**", "wake_stream": "wake/pool", "lease_ttl_ms": 60_000]).status == 201)
            #expect(try await origin.messages("/v1/stream/wake/pool").isEmpty, "existing data is not pending")
            // The server appends wakes behind any cache's back: a wake stream's reads are never kept.
            #expect(try await origin.request(.GET, "/v1/stream/wake/pool?offset=-1").header("Cache-Control") == "no-store")

            try await origin.append("/v1/stream/events/old", #"{"n":1}"#, type: "application/json")
            // Written before the append was answered: no waiting needed.
            var events = try await origin.messages("/v1/stream/wake/pool")
            #expect(events.count == 1)
            #expect(events.first?["type"] as? String == "wake" && events.first?["subscription_id"] as? String == id)
            #expect(events.first?["stream"] as? String == "events/old" && events.first?["generation"] as? Int == 1)

            let claim = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w1"])
            #expect(claim.status == 200)
            let token = try #require(claim.json["token"] as? String)
            let wakeID = try #require(claim.json["wake_id"] as? String)
            #expect(claim.json["generation"] as? Int == 1 && claim.json["lease_ttl_ms"] as? Int == 60_000)
            let streams = try #require(claim.json["streams"] as? [[String: Any]])
            let tail = try #require(streams.first { $0["path"] as? String == "events/old" }?["tail_offset"] as? String)
            #expect(streams.first?["has_pending"] as? Bool == true)
            #expect(!streams.contains { $0["path"] as? String == "wake/pool" }, "a wake stream never matches a pattern")

            let busy = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w2"])
            #expect(busy.status == 409 && busy.errorCode == "ALREADY_CLAIMED")
            #expect((busy.json["error"] as? [String: Any])?["current_holder"] as? String == "w1")

            let ack: [String: Any] = ["wake_id": wakeID, "generation": 1, "acks": [["stream": "events/old", "offset": tail]], "done": true]
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", ack).status == 401, "no token")
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: "dst1.forged.mac").errorCode == "TOKEN_INVALID")
            var wrongWake = ack
            wrongWake["wake_id"] = "w_other"
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", wrongWake, bearer: token).errorCode == "FENCED")
            let heartbeat = try await origin.control(.POST, "subscriptions/\(id)/ack", ["wake_id": wakeID, "generation": 1], bearer: token)
            #expect(heartbeat.status == 200 && heartbeat.json["ok"] as? Bool == true)
            let done = try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: token)
            #expect(done.status == 200)
            #expect(done.json["ok"] as? Bool == true && done.json["next_wake"] as? Bool == false)
            let stale = try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: token)
            #expect(stale.status == 409 && stale.errorCode == "FENCED")
            let links = try #require(try await origin.control(.GET, "subscriptions/\(id)").json["streams"] as? [[String: Any]])
            #expect(links.first { $0["path"] as? String == "events/old" }?["acked_offset"] as? String == tail)
            #expect(try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w1"]).errorCode == "NO_PENDING_WORK")

            // A new stream is linked before its first data, which is pending.
            try await origin.create("/v1/stream/events/new", type: "application/json", body: #"{"n":2}"#)
            events = try await origin.messages("/v1/stream/wake/pool")
            #expect(events.count == 2 && events.last?["stream"] as? String == "events/new")
            let second = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w2"])
            let secondToken = try #require(second.json["token"] as? String)
            let secondWake = try #require(second.json["wake_id"] as? String)
            #expect(second.json["generation"] as? Int == 2)
            // The first worker's token is for another generation.
            #expect(try await origin.control(.POST, "subscriptions/\(id)/release", ["wake_id": secondWake, "generation": 2], bearer: token).errorCode == "FENCED")
            // Released with work left: another wake is published for a later claim.
            #expect(try await origin.control(.POST, "subscriptions/\(id)/release", ["wake_id": secondWake, "generation": 2], bearer: secondToken).status == 204)
            events = try await origin.messages("/v1/stream/wake/pool")
            #expect(events.count == 3 && events.last?["generation"] as? Int == 3)
            #expect(try await origin.control(.POST, "subscriptions/\(id)/release", ["wake_id": secondWake, "generation": 2], bearer: secondToken).errorCode == "FENCED")
            // The origin's own /metrics, also when the suite runs through an edge.
            let metrics = try await TestHTTP.request(port: origin.server.port!, .GET, "/metrics").text
            #expect(metrics.contains("ds_origin_subscription_wake_events_total 3"))
            #expect(metrics.contains("ds_origin_subscription_fenced_total 4"))
        }
    }

    @Test func deletingASubscriptionFailsItsInFlightAcks() async throws {
        try await withOrigin { origin in
            let id = uniqueID("pull")
            try await origin.create("/v1/stream/w", type: "application/json", body: "[]")
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", ["type": "pull-wake", "streams": ["s"], "wake_stream": "w"]).status == 201)
            try await origin.create("/v1/stream/s", body: "data")
            let claim = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w1"])
            let token = try #require(claim.json["token"] as? String)
            let wakeID = try #require(claim.json["wake_id"] as? String)
            #expect(try await origin.control(.DELETE, "subscriptions/\(id)").status == 204)
            let ack: [String: Any] = ["wake_id": wakeID, "generation": 1, "done": true]
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: token).status == 404)
            // Made again under the same id: the old token is for the old subscription.
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", ["type": "pull-wake", "streams": ["s"], "wake_stream": "w"]).status == 201)
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: token).errorCode == "TOKEN_INVALID")
            #expect(try await origin.control(.POST, "subscriptions/\(id)/release", ack, bearer: token).errorCode == "TOKEN_INVALID")
        }
    }
}
