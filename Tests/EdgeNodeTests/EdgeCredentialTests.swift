import EdgeNode
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// One user's answer never reaches another: the fake upstream answers each read with the
/// request's own credentials as the body, marked `private`.
@Suite("Edge: credentials")
struct EdgeCredentialTests {
    static let path = "/v1/stream/secret"
    static let tokens = ["Bearer alice", "Bearer bob", "Bearer carol"]

    /// Body = the request's Authorization (or "anonymous"), `private, max-age=60`; a full chunk
    /// or an up-to-date tail; `/v1/stream/public` answers `public` instead.
    static func echo(upToDate: Bool, delay: TimeAmount = .zero) -> FakeUpstream.Responder {
        { request in
            let control = request.path == "/v1/stream/public" ? "public, max-age=60" : "private, max-age=60"
            return .read(request.header("Authorization") ?? "anonymous", next: 12, upToDate: upToDate, cacheControl: control, delay: delay)
        }
    }

    @Test(arguments: [false, true])
    func alternatingUsersAlwaysGetTheirOwnAnswer(upToDate: Bool) async throws {
        try await withFakeUpstream(Self.echo(upToDate: upToDate)) { t in
            for round in 0..<40 {
                for token in Self.tokens.prefix(2) {
                    let response = try await t.request(.GET, Self.path, headers: [("Authorization", token)])
                    #expect(response.status == 200)
                    #expect(response.text == token)
                    #expect(response.header("X-Cache") == (round == 0 ? "MISS" : "HIT"))
                }
                // No credentials: never a cached private answer, and its own private answer is not kept.
                let anonymous = try await t.request(.GET, Self.path)
                #expect(anonymous.text == "anonymous")
                #expect(anonymous.header("X-Cache") == "MISS")
            }
            #expect(t.fake.requests(.GET).filter { $0.header("Authorization") == "Bearer alice" }.count == 1)
            #expect(t.fake.requests(.GET).filter { $0.header("Authorization") == "Bearer bob" }.count == 1)
            #expect(t.fake.requests(.GET).filter { $0.header("Authorization") == nil }.count == 40)
            #expect(t.edge.cacheStats.entries == 2)
        }
    }

    /// The same, all at once: concurrent misses collapse per credential, never across.
    @Test func concurrentUsersNeverShareAnAnswer() async throws {
        try await withFakeUpstream(Self.echo(upToDate: true, delay: .milliseconds(100))) { t in
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<300 {
                    let token: String? = index % 4 == 3 ? nil : Self.tokens[index % 4]
                    group.addTask {
                        var headers: [(String, String)] = []
                        if let token { headers.append(("Authorization", token)) }
                        let response = try await t.request(.GET, Self.path, headers: headers)
                        return response.status == 200 && response.text == (token ?? "anonymous") ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wrong == 0)
            for token in Self.tokens {
                #expect(t.fake.requests(.GET).filter { $0.header("Authorization") == token }.count == 1)
            }
            // Afterwards, each user still finds only their own entry.
            for token in Self.tokens {
                let response = try await t.request(.GET, Self.path, headers: [("Authorization", token)])
                #expect(response.text == token)
                #expect(response.header("X-Cache") == "HIT")
            }
            #expect(try await t.request(.GET, Self.path).text == "anonymous")
        }
    }

    /// A `private` answer belongs to whoever asked, even when the request identifies its user by
    /// something else than `Authorization` (here a cookie): concurrent requests must not be
    /// answered with another requester's private answer through collapsing.
    @Test
    func privateAnswersAreNotSharedThroughCollapsing() async throws {
        let gate = FakeGate()
        try await withFakeUpstream({ request in
            .read(request.header("Cookie") ?? "none", next: 9, upToDate: true, cacheControl: "private, max-age=60").held(by: gate)
        }) { t in
            let alice = try await TestConnection.connect(port: t.port)
            let bob = try await TestConnection.connect(port: t.port)
            let aliceResponse = alice.send(.GET, Self.path, headers: [("Cookie", "session=alice")])
            try await eventually { t.fake.requests(.GET).count == 1 }
            let bobResponse = bob.send(.GET, Self.path, headers: [("Cookie", "session=bob")])
            // Bob's request has either joined Alice's flight or gone upstream on its own.
            try await eventually { t.edge.collapsedWaiters == 2 || t.fake.requests(.GET).count == 2 }
            gate.open()
            let first = try await aliceResponse.get()
            let second = try await bobResponse.get()
            await alice.close()
            await bob.close()
            #expect(first.text == "session=alice")
            #expect(second.text == "session=bob")
        }
    }

    /// `credentials = bypass`: nothing a credentialed request fetches is cached, not even a
    /// `public` answer; every such request goes upstream and says PASS.
    @Test func bypassCachesNothingCredentialed() async throws {
        try await withFakeUpstream(edge: { $0.credentials = .bypass }, Self.echo(upToDate: false)) { t in
            for _ in 0..<10 {
                for token in Self.tokens.prefix(2) {
                    for path in [Self.path, "/v1/stream/public"] {
                        let response = try await t.request(.GET, path, headers: [("Authorization", token)])
                        #expect(response.status == 200)
                        #expect(response.text == token)
                        #expect(response.header("X-Cache") == "PASS")
                    }
                }
                let anonymous = try await t.request(.GET, Self.path)
                #expect(anonymous.text == "anonymous")
                #expect(anonymous.header("X-Cache") == "MISS")
            }
            #expect(t.edge.cacheStats.entries == 0)
            #expect(t.fake.requests(.GET).count == 10 * (2 * 2 + 1))
            // A shared answer is still cached for requests without credentials…
            #expect(try await t.request(.GET, "/v1/stream/public").header("X-Cache") == "MISS")
            let shared = try await t.request(.GET, "/v1/stream/public")
            #expect(shared.header("X-Cache") == "HIT")
            #expect(shared.text == "anonymous")
            // …and never served to a credentialed request.
            let credentialed = try await t.request(.GET, "/v1/stream/public", headers: [("Authorization", "Bearer alice")])
            #expect(credentialed.text == "Bearer alice")
            #expect(credentialed.header("X-Cache") == "PASS")
        }
    }
}
