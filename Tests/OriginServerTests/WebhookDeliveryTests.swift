import Crypto
import Foundation
import NIOHTTP1
import OriginServer
import Subscriptions
import TestSupport
import Testing

private func uniqueID(_ prefix: String) -> String { "\(prefix)-\(UInt64.random(in: 0...UInt64.max))" }

private func json(_ bytes: [UInt8]) -> [String: Any] {
    ((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]) ?? [:]
}

private let done = WebhookTestServer.Reply(.ok, headers: [("Content-Type", "application/json")], body: Array(#"{"done":true}"#.utf8))
private let accepted = WebhookTestServer.Reply(.ok, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))

extension Origin {
    /// Creates a webhook subscription to `receiver` and returns its creation answer.
    func webhookSubscription(_ id: String, pattern: String, receiver: WebhookTestServer, lease: Int = 60_000) async throws -> TestResponse {
        let created = try await control(.PUT, "subscriptions/\(id)", [
            "type": "webhook", "pattern": pattern, "webhook": ["url": "http://127.0.0.1:\(receiver.port)/hook"], "lease_ttl_ms": lease,
        ])
        #expect(created.status == 201, "\(created.status) \(created.text)")
        return created
    }

    func ackedOffset(_ id: String, _ path: String) async throws -> String? {
        let links = try await control(.GET, "subscriptions/\(id)").json["streams"] as? [[String: Any]]
        return links?.first { $0["path"] as? String == path }?["acked_offset"] as? String
    }
}

@Suite("Subscriptions: webhook delivery (§7.1)")
struct WebhookDeliveryTests {
    /// A receiver verifies the wake as the spec tells it to: the key named by `kid` in the
    /// served key set, an Ed25519 signature over `<t>.<raw body>`.
    @Test func aWakeIsSignedWithTheServedKeyAndDoneAutoAcksItsSnapshot() async throws {
        let receiver = try await WebhookTestServer.start(reply: done)
        defer { Task { await receiver.stop() } }
        try await withOrigin { origin in
            let id = uniqueID("hook")
            let created = try await origin.webhookSubscription(id, pattern: "events/*", receiver: receiver)
            let signing = try #require((created.json["webhook"] as? [String: Any])?["signing"] as? [String: Any])
            #expect(signing["alg"] as? String == "ed25519")
            let jwksURL = try #require(signing["jwks_url"] as? String)
            #expect(jwksURL.hasSuffix("/v1/stream/__ds/jwks.json"))
            #expect(created.json["webhook_secret"] == nil)

            let createdStream = try await origin.create("/v1/stream/events/a", type: "application/json", body: #"{"n":1}"#)
            let tail = try #require(createdStream.header("Stream-Next-Offset"))
            let wakes = try await receiver.requests(1)
            let wake = try #require(wakes.first)
            #expect(wake.method == .POST && wake.uri == "/hook")
            #expect(wake.headers.first(name: "Content-Type") == "application/json")

            // Verify the signature independently of the server's code.
            let header = try #require(wake.headers.first(name: "Webhook-Signature"))
            var fields: [String: String] = [:]
            for part in header.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                fields[pair[0]] = pair.count == 2 ? pair[1] : ""
            }
            let jwks = try await origin.control(.GET, "jwks.json")
            let keys = try #require(json(jwks.body)["keys"] as? [[String: String]])
            let key = try #require(keys.first { $0["kid"] == fields["kid"] })
            #expect(key["kid"] == signing["kid"] as? String)
            let x = try #require(key["x"])
            let encodedSignature = try #require(fields["ed25519"])
            let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Base64URL.decode(x)))
            let signature = try #require(Base64URL.decode(encodedSignature))
            let t = try #require(fields["t"])
            #expect(publicKey.isValidSignature(signature, for: Array("\(t).".utf8) + wake.body))
            #expect(!publicKey.isValidSignature(signature, for: Array("\(t).".utf8) + wake.body + [0x20]))
            #expect(abs((Int64(t) ?? 0) - Int64(Date().timeIntervalSince1970)) < 300, "a timestamp inside any sane replay window")

            let body = json(wake.body)
            #expect(body["subscription_id"] as? String == id)
            #expect(body["generation"] as? Int == 1)
            #expect((body["wake_id"] as? String)?.isEmpty == false)
            #expect((body["callback_url"] as? String)?.hasSuffix("/v1/stream/__ds/subscriptions/\(id)/callback") == true)
            #expect((body["callback_token"] as? String)?.isEmpty == false)
            let stream = try #require((body["streams"] as? [[String: Any]])?.first)
            #expect(stream["path"] as? String == "events/a" && stream["link_type"] as? String == "glob")
            #expect(stream["tail_offset"] as? String == tail && stream["has_pending"] as? Bool == true)

            // `{"done": true}` acked the snapshot.
            try await waitUntil { try await origin.ackedOffset(id, "events/a") == tail }
            #expect(try await origin.control(.GET, "subscriptions/\(id)").json["status"] as? String == "active")
        }
    }

    @Test func callbacksAckExtendAndAreFenced() async throws {
        let receiver = try await WebhookTestServer.start(reply: accepted)
        defer { Task { await receiver.stop() } }
        try await withOrigin { origin in
            let id = uniqueID("hook")
            _ = try await origin.webhookSubscription(id, pattern: "jobs/**", receiver: receiver)
            try await origin.create("/v1/stream/jobs/x/1", body: "")
            let tail = try await origin.append("/v1/stream/jobs/x/1", "work")
            let first = try await receiver.requests(1)
            let wake = json(try #require(first.first).body)
            let callback = try #require(wake["callback_url"] as? String)
            let path = try #require(URL(string: callback)?.path)
            #expect(path == "/v1/stream/__ds/subscriptions/\(id)/callback")
            let token = try #require(wake["callback_token"] as? String)
            let wakeID = try #require(wake["wake_id"] as? String)
            let generation = try #require(wake["generation"] as? Int)

            func call(_ body: [String: Any], bearer: String?) async throws -> TestResponse {
                var headers = [("Content-Type", "application/json")]
                if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
                return try await origin.request(.POST, path, headers: headers, body: Array(try JSONSerialization.data(withJSONObject: body)))
            }
            let ack: [String: Any] = ["wake_id": wakeID, "generation": generation, "acks": [["stream": "jobs/x/1", "offset": tail]], "done": true]
            #expect(try await call(ack, bearer: nil).status == 401)
            #expect(try await call(ack, bearer: token + "x").errorCode == "TOKEN_INVALID")
            var wrongGeneration = ack
            wrongGeneration["generation"] = generation + 1
            #expect(try await call(wrongGeneration, bearer: token).errorCode == "FENCED")
            #expect(try await origin.ackedOffset(id, "jobs/x/1") != tail, "refused callbacks move nothing")
            // Progress without done keeps the wake.
            let progress = try await call(["wake_id": wakeID, "generation": generation], bearer: token)
            #expect(progress.status == 200 && progress.json["ok"] as? Bool == true)
            let finished = try await call(ack, bearer: token)
            #expect(finished.status == 200)
            #expect(finished.json["ok"] as? Bool == true && finished.json["next_wake"] as? Bool == false)
            #expect(try await origin.ackedOffset(id, "jobs/x/1") == tail)
            let stale = try await call(ack, bearer: token)
            #expect(stale.status == 409 && stale.errorCode == "FENCED")

            // The next append wakes again, with a new generation and wake id.
            try await origin.append("/v1/stream/jobs/x/1", "more")
            let two = try await receiver.requests(2)
            let next = json(try #require(two.last).body)
            #expect(next["generation"] as? Int == generation + 1 && next["wake_id"] as? String != wakeID)
            // Deleted: the in-flight wake's callback fails and moves nothing.
            #expect(try await origin.control(.DELETE, "subscriptions/\(id)").status == 204)
            let afterDelete: [String: Any] = ["wake_id": next["wake_id"]!, "generation": next["generation"]!, "done": true]
            #expect(try await call(afterDelete, bearer: next["callback_token"] as? String).status == 404)
        }
    }

    /// A receiver that fails twice: the subscription shows `failed` while a retry waits, retries
    /// (1 s, then 2 s, each ±20 %), and delivers once the receiver recovers.
    @Test func failedDeliveriesAreRetriedUntilTheReceiverRecovers() async throws {
        let receiver = try await WebhookTestServer.start(replies: { index in
            index < 2 ? WebhookTestServer.Reply(.serviceUnavailable) : done
        })
        defer { Task { await receiver.stop() } }
        try await withOrigin { origin in
            let id = uniqueID("hook")
            _ = try await origin.webhookSubscription(id, pattern: "r/*", receiver: receiver)
            let createdStream = try await origin.create("/v1/stream/r/1", body: "x")
            let tail = try #require(createdStream.header("Stream-Next-Offset"))
            _ = try await receiver.requests(1)
            try await waitUntil { try await origin.control(.GET, "subscriptions/\(id)").json["status"] as? String == "failed" }
            let attempts = try await receiver.requests(3)
            let generations = attempts.map { json($0.body)["generation"] as? Int ?? 0 }
            #expect(generations == [1, 2, 3], "each attempt is a new wake")
            try await waitUntil { try await origin.ackedOffset(id, "r/1") == tail }
            #expect(try await origin.control(.GET, "subscriptions/\(id)").json["status"] as? String == "active")
            #expect(receiver.received.count == 3)
            // The origin's own /metrics, also when the suite runs through an edge.
            let metrics = try await TestHTTP.request(port: origin.server.port!, .GET, "/metrics").text
            #expect(metrics.contains("ds_origin_subscription_webhook_failures_total 2"))
            #expect(metrics.contains("ds_origin_subscription_webhook_deliveries_total 1"))
            #expect(metrics.contains("ds_origin_subscription_wakes_total 3"))
            #expect(metrics.contains("ds_origin_subscription_subscriptions 1"))
            #expect(metrics.contains("ds_origin_subscription_failing 0"))
        }
    }
}
