import NIOCore
import NIOHTTP1
import Testing
@testable import StreamAuth

@Suite("Forward-auth decision cache")
struct ForwardAuthDecisionCacheTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func check(
        _ authorization: String? = "Bearer alice", method: String = "GET", uri: String = "/v1/stream/chat/1?offset=-1",
        host: String? = "streams.test", scope: AccessScope = .read, stream: String? = "chat/1"
    ) -> ForwardAuthCheck {
        ForwardAuthCheck(authorization: authorization, method: method, uri: uri, host: host, scope: scope, stream: stream)
    }

    private let refused = ForwardAuthDecision.refused(unauthorized: false, challenges: [])

    // A decision is used for its lifetime and not a moment longer.
    @Test func decisionsExpireAfterTheirLifetime() {
        var cache = ForwardAuthDecisionCache(lifetime: .seconds(5))
        let key = check().key
        cache.store(.allowed, for: key, now: start)
        #expect(cache.decision(for: key, now: start + .milliseconds(4_999)) == .allowed)
        #expect(cache.decision(for: key, now: start + .seconds(5)) == nil)
        #expect(cache.count == 0)
    }

    // Refusals are remembered like permissions; failures, being no decision, never are.
    @Test func onlyAnswersAreRemembered() {
        var cache = ForwardAuthDecisionCache(lifetime: .seconds(5))
        cache.store(refused, for: check("Bearer a").key, now: start)
        cache.store(.failed("authorization service is unreachable"), for: check("Bearer b").key, now: start)
        cache.store(.busy, for: check("Bearer c").key, now: start)
        #expect(cache.decision(for: check("Bearer a").key, now: start) == refused)
        #expect(cache.decision(for: check("Bearer b").key, now: start) == nil)
        #expect(cache.decision(for: check("Bearer c").key, now: start) == nil)
        #expect(cache.count == 1)
    }

    // forward_auth_cache = "0s": every check asks.
    @Test func aZeroLifetimeKeepsNothing() {
        var cache = ForwardAuthDecisionCache(lifetime: .zero)
        cache.store(.allowed, for: check().key, now: start)
        #expect(cache.decision(for: check().key, now: start) == nil)
        #expect(cache.count == 0)
    }

    // Full of live decisions, the oldest goes first; the newest is always kept.
    @Test func aFullCacheDropsTheOldest() {
        var cache = ForwardAuthDecisionCache(capacity: 3, lifetime: .seconds(60))
        for (index, user) in ["a", "b", "c", "d"].enumerated() {
            cache.store(.allowed, for: check("Bearer \(user)").key, now: start + .seconds(Int64(index)))
        }
        let now = start + .seconds(4)
        #expect(cache.count == 3)
        #expect(cache.decision(for: check("Bearer a").key, now: now) == nil)
        for user in ["b", "c", "d"] { #expect(cache.decision(for: check("Bearer \(user)").key, now: now) == .allowed) }
    }

    // Expired decisions make room before any live one is dropped.
    @Test func expiredDecisionsGoBeforeLiveOnes() {
        var cache = ForwardAuthDecisionCache(capacity: 3, lifetime: .seconds(5))
        cache.store(.allowed, for: check("Bearer a").key, now: start)
        cache.store(.allowed, for: check("Bearer b").key, now: start)
        cache.store(.allowed, for: check("Bearer c").key, now: start + .seconds(3))
        cache.store(.allowed, for: check("Bearer d").key, now: start + .seconds(6))
        let now = start + .seconds(6)
        #expect(cache.count == 2)
        #expect(cache.decision(for: check("Bearer c").key, now: now) == .allowed)
        #expect(cache.decision(for: check("Bearer d").key, now: now) == .allowed)
    }

    // Storing a key again replaces its decision and restarts its lifetime, and takes one place.
    @Test func storingAKeyAgainReplacesIt() {
        var cache = ForwardAuthDecisionCache(capacity: 2, lifetime: .seconds(5))
        let key = check().key
        cache.store(.allowed, for: key, now: start)
        cache.store(refused, for: key, now: start + .seconds(3))
        cache.store(.allowed, for: check("Bearer bob").key, now: start + .seconds(3))
        #expect(cache.count == 2)
        #expect(cache.decision(for: key, now: start + .seconds(7)) == refused)
        // The queue slot of the first store does not evict the second when it reaches the front.
        cache.store(.allowed, for: check("Bearer carol").key, now: start + .seconds(7))
        #expect(cache.decision(for: check("Bearer bob").key, now: start + .seconds(7)) == .allowed)
    }

    // Many keys through a small cache: it never holds more than its capacity.
    @Test func theBoundHoldsUnderChurn() {
        var cache = ForwardAuthDecisionCache(capacity: 100, lifetime: .seconds(10))
        for index in 0..<5_000 {
            cache.store(.allowed, for: check("Bearer \(index % 700)").key, now: start + .milliseconds(Int64(index)))
            #expect(cache.count <= 100)
        }
        #expect(cache.decision(for: check("Bearer \(4_999 % 700)").key, now: start + .seconds(5)) == .allowed)
    }

    // Alice's permission is never Bob's, nor hers for another path, scope, stream, method or host;
    // only the query (a reader's offset) is shared.
    @Test func keysSeparateEverythingTheEndpointSeesButTheQuery() {
        var cache = ForwardAuthDecisionCache(lifetime: .seconds(60))
        cache.store(.allowed, for: check().key, now: start)
        let others = [
            check("Bearer bob"), check(nil), check(""), check("bearer alice"),
            check(uri: "/v1/stream/chat/2?offset=-1", stream: "chat/2"), check(uri: "/v1/stream/chat/%31?offset=-1"),
            check(scope: .write), check(stream: "chat/2"), check(stream: nil), check(method: "HEAD"), check(host: "other.test"),
            check(host: nil),
        ]
        for other in others {
            #expect(other.key != check().key, "\(other)")
            #expect(cache.decision(for: other.key, now: start) == nil, "\(other)")
        }
        #expect(check(uri: "/v1/stream/chat/1?offset=0000000000000000_0000000000000042").key == check().key)
        #expect(check(uri: "/v1/stream/chat/1").key == check().key)
        // Fields are delimited: moving bytes from one field to the next is another check.
        #expect(check("Bearer alice", method: "GET").key != check("Bearer aliceG", method: "ET").key)
        // No stream and an empty one both mean the server as a whole, and send the same headers.
        #expect(check(stream: nil).key == check(stream: "").key)
    }

    // What the endpoint is sent: the request's credential and facts, never a client's own X-Forwarded-*.
    @Test func theHeadersSent() {
        let sent = check(uri: "/v1/stream/chat/room%201?offset=-1&live=sse", stream: "chat/room 1").headers
        let names = sent.map { $0.0 }
        #expect(names == ["Authorization", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "X-Durable-Streams-Scope", "X-Durable-Streams-Stream"])
        #expect(sent.first { $0.0 == "X-Forwarded-Uri" }?.1 == "/v1/stream/chat/room%201?offset=-1&live=sse")
        #expect(sent.first { $0.0 == "X-Durable-Streams-Stream" }?.1 == "chat/room%201")
        #expect(sent.first { $0.0 == "X-Durable-Streams-Scope" }?.1 == "read")
        let anonymous = check(nil, host: nil, scope: .admin, stream: nil).headers.map { $0.0 }
        #expect(anonymous == ["X-Forwarded-Method", "X-Forwarded-Uri", "X-Durable-Streams-Scope"])
    }

    // A fork asks twice: write on itself, read on its source, with the request's own facts.
    @Test func aForkIsTwoChecks() {
        var head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v1/stream/mine/copy")
        head.headers.add(name: "Stream-Forked-From", value: "/v1/stream/theirs/data")
        head.headers.add(name: "Authorization", value: "Bearer alice")
        head.headers.add(name: "Host", value: "streams.test")
        head.headers.add(name: "X-Forwarded-Host", value: "spoofed.test")
        let requirement = AccessRequirement.of(
            method: "PUT", path: "/v1/stream/mine/copy", prefix: "/v1/stream/", operationalScope: nil, header: { head.headers.first(name: $0) })
        let checks = ForwardAuthCheck.checks(for: requirement, head: head)
        #expect(checks.map(\.scope) == [.write, .read])
        #expect(checks.map(\.stream) == ["mine/copy", "theirs/data"])
        #expect(checks.allSatisfy { $0.authorization == "Bearer alice" && $0.host == "streams.test" && $0.method == "PUT" })
    }

    // The endpoint's status decides; only 2xx allows.
    @Test func statusesMapToDecisions() {
        #expect(ForwardAuthDecision(status: .ok, headers: [:]) == .allowed)
        #expect(ForwardAuthDecision(status: .noContent, headers: [:]) == .allowed)
        let challenged = ForwardAuthDecision(status: .unauthorized, headers: ["WWW-Authenticate": "Bearer realm=\"corp\""])
        #expect(challenged == .refused(unauthorized: true, challenges: ["Bearer realm=\"corp\""]))
        #expect(ForwardAuthDecision(status: .forbidden, headers: [:]) == .refused(unauthorized: false, challenges: []))
        for status in [HTTPResponseStatus.found, .notFound, .internalServerError, .badGateway] {
            guard case .failed = ForwardAuthDecision(status: status, headers: [:]) else {
                Issue.record("\(status) must not decide")
                continue
            }
        }
        // An oversized challenge is not kept (every decision is cached).
        let huge = ForwardAuthDecision(status: .unauthorized, headers: ["WWW-Authenticate": String(repeating: "x", count: 2_000)])
        #expect(huge == .refused(unauthorized: true, challenges: []))
    }
}
