import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport
import Testing
@testable import StreamAuth

/// The forward authority against a real endpoint on a socket: what it asks, what it remembers,
/// how it collapses and bounds checks, and that every failure is a refusal.
@Suite("Forward authority")
struct ForwardAuthorityTests {
    private let loop = MultiThreadedEventLoopGroup.singleton.next()

    private func check(_ user: String, scope: AccessScope = .read, stream: String = "chat/1") -> ForwardAuthCheck {
        ForwardAuthCheck(
            authorization: "Bearer \(user)", method: "GET", uri: "/v1/stream/\(stream)?offset=-1", host: "streams.test", scope: scope,
            stream: stream)
    }

    private func authority(
        _ endpoint: FakeAuthEndpoint, cache: TimeAmount = .seconds(60), timeout: TimeAmount = .seconds(30), maxInFlight: Int = 64,
        events: NIOLockedValueBox<[ForwardAuthority.Event]>? = nil
    ) throws -> ForwardAuthority {
        let url = try ForwardAuthEndpoint(url: endpoint.url("/check?from=test"))
        var observer: ForwardAuthority.Observer?
        if let events {
            observer = { event in events.withLockedValue { $0.append(event) } }
        }
        return ForwardAuthority(
            client: ForwardAuthClient(endpoint: url, timeout: timeout), cacheLifetime: cache, maxChecksInFlight: maxInFlight,
            observer: observer)
    }

    // The endpoint gets a GET on its own path with the check's headers, and its answer decides.
    @Test func askingAndRemembering() async throws {
        try await FakeAuthEndpoint.with({ seen in
            switch seen.header("Authorization") {
            case "Bearer alice": return .init(.noContent)
            case "Bearer mallory": return .init(.unauthorized, headers: [("WWW-Authenticate", "Bearer realm=\"corp\", error=\"invalid_token\"")])
            default: return .init(.forbidden)
            }
        }) { endpoint in
            let events = NIOLockedValueBox<[ForwardAuthority.Event]>([])
            let authority = try authority(endpoint, events: events)
            #expect(try await authority.decide(check("alice"), on: loop).get() == .allowed)
            #expect(try await authority.decide(check("alice"), on: loop).get() == .allowed)
            #expect(try await authority.decide(check("bob"), on: loop).get() == .refused(unauthorized: false, challenges: []))
            #expect(try await authority.decide(check("bob"), on: loop).get() == .refused(unauthorized: false, challenges: []))
            let mallory = try await authority.decide(check("mallory"), on: loop).get()
            #expect(mallory == .refused(unauthorized: true, challenges: ["Bearer realm=\"corp\", error=\"invalid_token\""]))
            // Alice allowed to read is not Alice allowed to write.
            #expect(try await authority.decide(check("alice", scope: .write), on: loop).get() == .allowed)
            #expect(endpoint.hits == 4)
            #expect(events.withLockedValue { $0.filter { $0 == .cached }.count } == 2)
            let first = try #require(endpoint.seen.first)
            #expect(first.method == .GET && first.uri == "/check?from=test")
            #expect(first.header("Host") == "127.0.0.1:\(endpoint.port)")
            #expect(first.header("X-Forwarded-Method") == "GET")
            #expect(first.header("X-Forwarded-Uri") == "/v1/stream/chat/1?offset=-1")
            #expect(first.header("X-Forwarded-Host") == "streams.test")
            #expect(first.header("X-Durable-Streams-Scope") == "read")
            #expect(first.header("X-Durable-Streams-Stream") == "chat/1")
            #expect(endpoint.seen.last?.header("X-Durable-Streams-Scope") == "write")
        }
    }

    // Another status is no decision: refused with a reason, and asked again next time.
    @Test func otherStatusesFailAndAreNotRemembered() async throws {
        try await FakeAuthEndpoint.with({ _ in .init(.internalServerError) }) { endpoint in
            let authority = try authority(endpoint)
            #expect(try await authority.decide(check("alice"), on: loop).get() == .failed("authorization service answered 500"))
            #expect(try await authority.decide(check("alice"), on: loop).get() == .failed("authorization service answered 500"))
            #expect(endpoint.hits == 2)
            #expect(authority.cachedDecisions == 0)
        }
    }

    // Nothing listening, or no answer in time: refused, never allowed.
    @Test func anUnreachableOrSilentEndpointFails() async throws {
        let gone = try await FakeAuthEndpoint.start { _ in .init(.ok) }
        await gone.stop()
        // Refused, whatever the reason: the freed port may meanwhile belong to another test's
        // server (then it answers something else, or not in time), which must not let it in either.
        let refused = try await authority(gone).decide(check("alice"), on: loop).get()
        if case .failed = refused {} else { Issue.record("an unreachable endpoint gave \(refused)") }
        try await FakeAuthEndpoint.with({ _ in .init(.ok) }) { silent in
            silent.hold()
            let timedOut = try await authority(silent, timeout: .milliseconds(100)).decide(check("alice"), on: loop).get()
            #expect(timedOut == .failed("authorization service did not answer in time"))
        }
    }

    // Identical checks in flight together make one call; different ones beyond the bound are
    // refused at once (503), without asking; identical ones still join.
    @Test func collapsingAndTheInFlightBound() async throws {
        try await FakeAuthEndpoint.with({ _ in .init(.ok) }) { endpoint in
            endpoint.hold()
            let events = NIOLockedValueBox<[ForwardAuthority.Event]>([])
            let authority = try authority(endpoint, maxInFlight: 2, events: events)
            let alice = (0..<5).map { _ in authority.decide(check("alice"), on: MultiThreadedEventLoopGroup.singleton.next()) }
            let bob = authority.decide(check("bob"), on: loop)
            #expect(try await authority.decide(check("carol"), on: loop).get() == .busy)
            let aliceAgain = authority.decide(check("alice"), on: loop)
            endpoint.release()
            for decision in alice + [bob, aliceAgain] { #expect(try await decision.get() == .allowed) }
            #expect(endpoint.hits == 2)
            #expect(events.withLockedValue { $0.filter { $0 == .joined }.count } == 5)
            #expect(events.withLockedValue { $0.filter { $0 == .busy }.count } == 1)
            // With the flights done, carol is asked.
            #expect(try await authority.decide(check("carol"), on: loop).get() == .allowed)
            #expect(endpoint.hits == 3)
        }
    }

    // forward_auth_cache = "0s": every check asks.
    @Test func withoutACacheEveryCheckAsks() async throws {
        try await FakeAuthEndpoint.with({ _ in .init(.ok) }) { endpoint in
            let authority = try authority(endpoint, cache: .zero)
            for _ in 0..<3 { #expect(try await authority.decide(check("alice"), on: loop).get() == .allowed) }
            #expect(endpoint.hits == 3)
        }
    }
}
