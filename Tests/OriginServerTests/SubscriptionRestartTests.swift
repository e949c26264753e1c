import Foundation
import NIOHTTP1
import NIOPosix
import OriginServer
import StreamStore
import Subscriptions
import TestSupport
import Testing

@Suite("Subscriptions: kept across restarts with a data directory (§6.5, §7)")
struct SubscriptionRestartTests {
    /// An origin on the file store in `directory`, with its subscription keys and state there, as
    /// `durable-streams origin --data-dir` runs it.
    private func withDurableOrigin<T>(_ directory: String, _ body: (Origin) async throws -> T) async throws -> T {
        var configuration = OriginConfiguration()
        configuration.port = 0
        configuration.subscriptionKeys = try SubscriptionKeys.load(directory: directory + "/subscriptions")
        configuration.subscriptionDirectory = directory + "/subscriptions"
        let store = try FileStore.open(FileStoreOptions(directory: directory))
        let server = OriginServer(configuration: configuration, store: store, group: MultiThreadedEventLoopGroup.singleton)
        try await server.start()
        do {
            let result = try await body(Origin(server: server, edge: nil))
            try await server.shutdown()
            return result
        } catch {
            try? await server.shutdown()
            throw error
        }
    }

    @Test func linksCursorsGenerationAndKeysSurviveARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-subs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let id = "restart-1"
        let (kid, token, wakeID, acked) = try await withDurableOrigin(directory) { (origin: Origin) async throws -> (String, String, String, String) in
            try await origin.create("/v1/stream/wake", type: "application/json", body: "[]")
            #expect(try await origin.control(.PUT, "subscriptions/\(id)", ["type": "pull-wake", "pattern": "e/*", "wake_stream": "wake"]).status == 201)
            try await origin.create("/v1/stream/e/1", body: "one")
            let claim = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w"])
            let token = try #require(claim.json["token"] as? String)
            let wakeID = try #require(claim.json["wake_id"] as? String)
            let tail = try #require((claim.json["streams"] as? [[String: Any]])?.first?["tail_offset"] as? String)
            let ack: [String: Any] = ["wake_id": wakeID, "generation": 1, "acks": [["stream": "e/1", "offset": tail]], "done": true]
            #expect(try await origin.control(.POST, "subscriptions/\(id)/ack", ack, bearer: token).status == 200)
            // Claimed again and left unfinished when the server stops.
            try await origin.append("/v1/stream/e/1", "two")
            let second = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w"])
            let kid = try #require(((try await origin.control(.GET, "jwks.json")).json["keys"] as? [[String: Any]])?.first?["kid"] as? String)
            return (kid, try #require(second.json["token"] as? String), try #require(second.json["wake_id"] as? String), tail)
        }
        try await withDurableOrigin(directory) { (origin: Origin) async throws in
            let kept = try await origin.control(.GET, "subscriptions/\(id)")
            #expect(kept.status == 200)
            let link = (kept.json["streams"] as? [[String: Any]])?.first
            #expect(link?["path"] as? String == "e/1" && link?["acked_offset"] as? String == acked)
            let keys = (try await origin.control(.GET, "jwks.json")).json["keys"] as? [[String: Any]]
            #expect(keys?.first?["kid"] as? String == kid, "the signing key is the same")
            // The unfinished wake ended with the old process: its token no longer works …
            let stale = try await origin.control(.POST, "subscriptions/\(id)/ack", ["wake_id": wakeID, "generation": 2, "done": true], bearer: token)
            #expect(stale.status == 401 || stale.status == 409)
            // … and its pending work is woken again, with a later generation.
            let events = try await origin.messages("/v1/stream/wake")
            #expect((events.last?["generation"] as? Int ?? 0) > 2)
            let claim = try await origin.control(.POST, "subscriptions/\(id)/claim", ["worker": "w"])
            #expect(claim.status == 200)
            #expect((claim.json["generation"] as? Int ?? 0) > 2)
            // A stream made later still links by the kept pattern.
            try await origin.create("/v1/stream/e/2", body: "")
            let links = try #require(try await origin.control(.GET, "subscriptions/\(id)").json["streams"] as? [[String: Any]])
            #expect(links.map { $0["path"] as? String } == ["e/1", "e/2"])
        }
        // Deleted, it stays deleted.
        try await withDurableOrigin(directory) { (origin: Origin) async throws in
            #expect(try await origin.control(.DELETE, "subscriptions/\(id)").status == 204)
        }
        try await withDurableOrigin(directory) { (origin: Origin) async throws in
            #expect(try await origin.control(.GET, "subscriptions/\(id)").status == 404)
        }
    }
}
