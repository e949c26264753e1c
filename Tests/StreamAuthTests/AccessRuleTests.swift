import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport
import Testing
@testable import StreamAuth

@Suite("Access rules")
struct AccessRuleTests {
    private func requirement(_ method: String, _ path: String, headers: [String: String] = [:], metrics: AccessScope? = nil)
        -> AccessRequirement
    {
        AccessRequirement.of(method: method, path: Substring(path), prefix: "/v1/stream/", operationalScope: metrics, header: { headers[$0] })
    }

    @Test func eachMethodNeedsItsScopeOnItsStream() {
        #expect(requirement("GET", "/v1/stream/chat/1").needs == [.init(scope: .read, stream: "chat/1")])
        #expect(requirement("HEAD", "/v1/stream/chat/1").needs == [.init(scope: .read, stream: "chat/1")])
        #expect(requirement("POST", "/v1/stream/chat/1").needs == [.init(scope: .write, stream: "chat/1")])
        #expect(requirement("PUT", "/v1/stream/chat/1").needs == [.init(scope: .write, stream: "chat/1")])
        #expect(requirement("DELETE", "/v1/stream/chat/1").needs == [.init(scope: .admin, stream: "chat/1")])
        // Unknown methods are never cheaper than a delete.
        #expect(requirement("PATCH", "/v1/stream/chat/1").needs == [.init(scope: .admin, stream: "chat/1")])
    }

    @Test func aForkAlsoNeedsReadOnItsSource() {
        let fork = requirement("PUT", "/v1/stream/mine/copy", headers: ["Stream-Forked-From": "/v1/stream/theirs/data"])
        #expect(fork.needs == [.init(scope: .write, stream: "mine/copy"), .init(scope: .read, stream: "theirs/data")])
        let writerOfMine = Principal(name: "w", grants: [Grant(.write, prefix: "mine/")])
        #expect(!fork.isSatisfied(by: writerOfMine))
        let alsoReader = Principal(name: "w", grants: [Grant(.write, prefix: "mine/"), Grant(.read, prefix: "theirs/")])
        #expect(fork.isSatisfied(by: alsoReader))
        // A source outside the stream routes can only be named by someone who may read everything.
        let odd = requirement("PUT", "/v1/stream/mine/copy", headers: ["Stream-Forked-From": "/elsewhere"])
        #expect(!odd.isSatisfied(by: alsoReader))
    }

    /// The subscription API (§6–7): the key set is public, a wake's own token authorises its
    /// callback, ack and release, and managing a subscription needs scopes on its name.
    @Test func reservedControlPathsHaveTheirOwnRules() {
        #expect(requirement("GET", "/v1/stream/__ds/jwks.json").isPublic)
        for action in ["callback", "ack", "release"] {
            #expect(requirement("POST", "/v1/stream/__ds/subscriptions/s1/\(action)").isPublic)
        }
        let name = "__ds/subscriptions/s1"
        #expect(requirement("GET", "/v1/stream/__ds/subscriptions/s1").needs == [.init(scope: .read, stream: name)])
        #expect(requirement("POST", "/v1/stream/__ds/subscriptions/s1/claim").needs == [.init(scope: .write, stream: name)])
        for (method, path) in [("PUT", ""), ("DELETE", ""), ("POST", "/streams"), ("DELETE", "/streams/a%2Fb"), ("GET", "/callback")] {
            #expect(requirement(method, "/v1/stream/__ds/subscriptions/s1" + path).needs == [.init(scope: .admin, stream: name)], "\(method) \(path)")
        }
        // Anything else under __ds needs read on it (and the server answers 404).
        #expect(requirement("PUT", "/v1/stream/__ds/other").needs == [.init(scope: .read, stream: "__ds/other")])
        let team = Principal(name: "ops", grants: [Grant(.admin, prefix: "__ds/subscriptions/team-a-")])
        #expect(requirement("PUT", "/v1/stream/__ds/subscriptions/team-a-1").isSatisfied(by: team))
        #expect(!requirement("PUT", "/v1/stream/__ds/subscriptions/team-b-1").isSatisfied(by: team))
    }

    @Test func preflightsHealthAndPublicMetricsNeedNothing() {
        #expect(requirement("OPTIONS", "/v1/stream/a").isPublic)
        #expect(requirement("GET", "/healthz").isPublic)
        #expect(requirement("GET", "/metrics").isPublic)
        #expect(requirement("GET", "/metrics", metrics: .admin).needs == [.init(scope: .admin, stream: nil)])
    }

    @Test func anUndecodableStreamNameNeedsReadOnEverything() {
        let bad = requirement("GET", "/v1/stream/a/../b")
        #expect(bad.needs == [.init(scope: .read, stream: "")])
        #expect(!bad.isSatisfied(by: Principal(name: "p", grants: [Grant(.admin, prefix: "a/")])))
        #expect(bad.isSatisfied(by: Principal(name: "p", grants: [Grant(.read)])))
    }

    @Test func scopesIncludeTheLowerOnesAndPrefixesBound() {
        let writer = Grant(.write, prefix: "logs/")
        #expect(writer.allows(.read, on: "logs/a"))
        #expect(writer.allows(.write, on: "logs/a"))
        #expect(!writer.allows(.admin, on: "logs/a"))
        #expect(!writer.allows(.read, on: "log"))
        #expect(!writer.allows(.read, on: nil))  // server endpoints need a grant on everything
        #expect(Grant(.admin).allows(.admin, on: nil))
    }

    // Prefixes compare bytes: a canonically equivalent spelling is another name.
    @Test func prefixesCompareBytes() {
        let grant = Grant(.read, prefix: "caf\u{E9}/")
        #expect(grant.allows(.read, on: "caf\u{E9}/menu"))
        #expect(!grant.allows(.read, on: "cafe\u{301}/menu"))
        #expect(!Grant(.read, prefix: "chat/").allows(.read, on: "chatroom"))
    }

    // At an edge that checks credentials, paths it would pass upstream unchecked need them too;
    // health checks never do.
    @Test func otherPathsNeedTheirScopeWhenSet() {
        let other = AccessRequirement.of(
            method: "GET", path: "/v1/x/../stream/secret", prefix: "/v1/stream/", operationalScope: nil, otherPathsScope: .admin,
            header: { _ in nil })
        #expect(other.needs == [.init(scope: .admin, stream: nil)])
        for open in ["/healthz", "/readyz"] {
            #expect(AccessRequirement.of(
                method: "GET", path: Substring(open), prefix: "/v1/stream/", operationalScope: .admin, otherPathsScope: .admin,
                header: { _ in nil }).isPublic)
        }
    }

    @Test func tokenScopesGrantOnlyWhatTheyName() {
        #expect(TokenScopes.grants("read write:chat/ admin:ops/ openid profile") == [
            Grant(.read), Grant(.write, prefix: "chat/"), Grant(.admin, prefix: "ops/"),
        ])
        #expect(TokenScopes.grants("").isEmpty)
        #expect(TokenScopes.grants("reader write_all").isEmpty)
        // An empty prefix (a template filled with nothing) grants nothing, not everything.
        #expect(TokenScopes.grants("read: write:").isEmpty)
    }

    @Test func bearerCredentialsAreParsedStrictly() {
        #expect(BearerCredential(header: "Bearer abc.def.ghi") == .jwt("abc.def.ghi"))
        #expect(BearerCredential(header: "bearer  key-123") == .apiKey("key-123"))
        #expect(BearerCredential(header: "Basic dXNlcjpwdw==") == nil)
        #expect(BearerCredential(header: "Bearer ") == nil)
        #expect(BearerCredential(header: "Bearer a b") == nil)
        #expect(BearerCredential(header: "Bearer " + String(repeating: "a", count: 9000)) == nil)
        #expect(BearerCredential(header: "Bearer " + String(repeating: "a", count: 8192)) == .apiKey(Substring(String(repeating: "a", count: 8192))))
        #expect(BearerCredential(header: "  BEARER x.y.z") == .jwt("x.y.z"))
        #expect(BearerCredential(header: "Bearer") == nil)
        #expect(BearerCredential(header: "Bearerx.y.z") == nil)
        #expect(BearerCredential(header: "Bearer x.y.z\u{00E9}") == nil)
    }

    @Test func answersMadePublicBecomePrivateWithVary() {
        #expect(AuthorizingResponder.sharesPublicly("public, max-age=60"))
        #expect(AuthorizingResponder.sharesPublicly("max-age=60 ,PUBLIC"))
        #expect(!AuthorizingResponder.sharesPublicly("private, max-age=60"))
        #expect(!AuthorizingResponder.sharesPublicly("no-store, publicity"))
        var headers = HTTPHeaders([("Cache-Control", "max-age=60, Public, immutable")])
        AuthorizingResponder.privatise(&headers)
        #expect(headers["Cache-Control"] == ["max-age=60, private, immutable"])
        #expect(headers["Vary"] == ["Authorization"])
        // A comma followed by a combining accent still separates directives, as it does for
        // `sharesPublicly`: the `public` before it is rewritten, not left beside a `Vary`.
        var accented = HTTPHeaders([("Cache-Control", "public,\u{301}x")])
        AuthorizingResponder.privatise(&accented)
        #expect(accented["Cache-Control"] == ["private, \u{301}x"])
        var untouched = HTTPHeaders([("Cache-Control", "no-store")])
        AuthorizingResponder.privatise(&untouched)
        #expect(untouched["Cache-Control"] == ["no-store"] && untouched["Vary"].isEmpty)
    }

    /// An answer serialized ahead of time: its `Cache-Control` was found when it was encoded.
    @Test func encodedAnswersMadePublicBecomePrivateToo() {
        func encoded(_ control: String) -> ServerReply {
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([("Cache-Control", control)]))
            var extra = ExtraHeaderLines()
            extra.add(name: "X-Cache", value: "HIT")
            return .encoded(EncodedResponse(head, body: ByteBuffer(string: "abc")), extra: extra)
        }
        let made = AuthorizingResponder.privatised(encoded("public, max-age=60"))
        #expect(made.head.headers["Cache-Control"] == ["private, max-age=60"])
        #expect(made.head.headers["Vary"] == ["Authorization"])
        #expect(made.head.headers["X-Cache"] == ["HIT"])
        #expect(made.bodyBytes == 3)
        guard case .encoded = AuthorizingResponder.privatised(encoded("private, max-age=60")) else {
            Issue.record("an answer already private is passed on as it is")
            return
        }
    }
}
