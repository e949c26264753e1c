import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import TestSupport
import Testing

@testable import Subscriptions

@Suite("Subscriptions: webhook client")
struct WebhookClientTests {
    static let wakeBody = Array(#"{"subscription":"s1","streams":["a"]}"#.utf8)
    static let answer = WebhookTestServer.Reply(.ok, headers: [("Content-Type", "application/json")], body: Array(#"{"ok":true}"#.utf8))

    /// Resolves every name to 127.0.0.1 and counts the calls, so tests reach only the local server.
    final class LoopbackResolver: Sendable {
        private let calls = NIOLockedValueBox<[String]>([])
        var names: [String] { calls.withLockedValue { $0 } }
        var resolve: @Sendable (String, Int) throws -> [SocketAddress] {
            { [calls] host, port in
                calls.withLockedValue { $0.append(host) }
                return [try SocketAddress(ipAddress: "127.0.0.1", port: port)]
            }
        }
    }

    static func client(
        trustRoots: NIOSSLTrustRoots = .default, resolve: (@Sendable (String, Int) throws -> [SocketAddress])? = nil
    ) -> WebhookClient {
        WebhookClient(
            group: MultiThreadedEventLoopGroup.singleton, threadPool: NIOThreadPool.singleton, trustRoots: trustRoots,
            resolve: resolve)
    }

    static func post(_ client: WebhookClient, _ url: String, timeout: TimeAmount = .seconds(10)) async throws -> WebhookResponse {
        try await client.post(
            try WebhookURL.parse(url), headers: [("Content-Type", "application/json"), ("Webhook-Signature", "sig")],
            body: wakeBody, timeout: timeout
        ).get()
    }

    static func failure(of work: () async throws -> WebhookResponse) async -> (any Error)? {
        do {
            let response = try await work()
            Issue.record("expected a failure, got status \(response.status)")
            return nil
        } catch {
            return error
        }
    }

    @Test func postsTheWakeToALoopbackLiteralAndReturnsTheAnswer() async throws {
        let server = try await WebhookTestServer.start(reply: Self.answer)
        defer { Task { await server.stop() } }
        let resolver = LoopbackResolver()
        let response = try await Self.post(Self.client(resolve: resolver.resolve), "http://127.0.0.1:\(server.port)/hook?x=1")

        #expect(response.status == 200)
        #expect(response.body == Array(#"{"ok":true}"#.utf8))
        // An IP literal is the address itself: no lookup.
        #expect(resolver.names.isEmpty)
        let request = try #require(server.received.first)
        #expect(server.received.count == 1)
        #expect(request.method == .POST)
        #expect(request.uri == "/hook?x=1")
        #expect(request.body == Self.wakeBody)
        #expect(request.headers["Host"] == ["127.0.0.1:\(server.port)"])
        #expect(request.headers["Content-Length"] == [String(Self.wakeBody.count)])
        #expect(request.headers["Connection"] == ["close"])
        #expect(request.headers["Content-Type"] == ["application/json"])
        #expect(request.headers["Webhook-Signature"] == ["sig"])
    }

    @Test func postsToLocalhostThroughTheSystemResolver() async throws {
        let server = try await WebhookTestServer.start(reply: Self.answer)
        defer { Task { await server.stop() } }
        // The system's answer for localhost, kept to IPv4 so that only 127.0.0.1 is dialled.
        let resolve: @Sendable (String, Int) throws -> [SocketAddress] = { host, port in
            try WebhookClient.systemResolve(host: host, port: port).filter { if case .v4 = $0 { true } else { false } }
        }
        let response = try await Self.post(Self.client(resolve: resolve), "http://localhost:\(server.port)/wake")
        #expect(response.status == 200)
        let request = try #require(server.received.first)
        #expect(request.uri == "/wake")
        #expect(request.headers["Host"] == ["localhost:\(server.port)"])
    }

    @Test func theSystemResolverFindsLoopbackForLocalhost() throws {
        let addresses = try WebhookClient.systemResolve(host: "localhost", port: 8080)
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { WebhookAddressPolicy.verdict($0) == .loopback && $0.port == 8080 })
    }

    @Test func callerHeadersCannotReplaceTheFramingOnes() async throws {
        let server = try await WebhookTestServer.start(reply: Self.answer)
        defer { Task { await server.stop() } }
        let response = try await Self.client().post(
            try WebhookURL.parse("http://127.0.0.1:\(server.port)/"),
            headers: [("Host", "internal.example"), ("Content-Length", "1"), ("Connection", "keep-alive"), ("Transfer-Encoding", "chunked")],
            body: Self.wakeBody, timeout: .seconds(10)
        ).get()
        #expect(response.status == 200)
        let request = try #require(server.received.first)
        #expect(request.headers["Host"] == ["127.0.0.1:\(server.port)"])
        #expect(request.headers["Content-Length"] == [String(Self.wakeBody.count)])
        #expect(request.headers["Connection"] == ["close"])
        #expect(request.headers["Transfer-Encoding"].isEmpty)
        #expect(request.body == Self.wakeBody)
    }

    @Test func postsOverTLSVerifyingTheHostName() async throws {
        let ca = try TestCertificateAuthority.shared
        let server = try await WebhookTestServer.start(tls: try ca.serverContext(), reply: Self.answer)
        defer { Task { await server.stop() } }
        let resolver = LoopbackResolver()
        let client = Self.client(trustRoots: .file(ca.caFile), resolve: resolver.resolve)
        let response = try await Self.post(client, "https://localhost:\(server.port)/hook")
        #expect(response.status == 200)
        #expect(response.body == Array(#"{"ok":true}"#.utf8))
        #expect(resolver.names == ["localhost"])
        let request = try #require(server.received.first)
        #expect(request.headers["Host"] == ["localhost:\(server.port)"])
        #expect(request.body == Self.wakeBody)
    }

    @Test func anUntrustedCertificateFailsTheTLSHandshake() async throws {
        let server = try await WebhookTestServer.start(tls: try TestCertificateAuthority.shared.serverContext(), reply: Self.answer)
        defer { Task { await server.stop() } }
        let stranger = try TestCertificateAuthority()
        defer { stranger.remove() }
        let client = Self.client(trustRoots: .file(stranger.caFile), resolve: LoopbackResolver().resolve)
        let error = await Self.failure { try await Self.post(client, "https://localhost:\(server.port)/hook") }
        #expect((error as? WebhookDeliveryError)?.kind == .tls)
        #expect(server.received.isEmpty)
    }

    @Test func anIPLiteralIsVerifiedAgainstTheCertificatesAddresses() async throws {
        // A certificate for `localhost` alone does not vouch for 127.0.0.1.
        let ca = try TestCertificateAuthority(namesLoopback: false)
        defer { ca.remove() }
        let server = try await WebhookTestServer.start(tls: try ca.serverContext(), reply: Self.answer)
        defer { Task { await server.stop() } }
        let client = Self.client(trustRoots: .file(ca.caFile))
        let error = await Self.failure { try await Self.post(client, "https://127.0.0.1:\(server.port)/hook") }
        #expect((error as? WebhookDeliveryError)?.kind == .tls)
        #expect(server.received.isEmpty)
    }

    @Test(arguments: ["10.0.0.5", "169.254.169.254", "127.0.0.1", "fd00::1", "::ffff:10.0.0.5"])
    func aNameResolvingToARefusedAddressIsNotConnectedTo(_ refused: String) async throws {
        let server = try await WebhookTestServer.start(reply: Self.answer)
        defer { Task { await server.stop() } }
        let client = Self.client(resolve: { _, port in [try SocketAddress(ipAddress: refused, port: port)] })
        let error = await Self.failure { try await Self.post(client, "https://hooks.example.com:\(server.port)/hook") }
        let refusal = try #require(error as? SubscriptionError)
        #expect(refusal.status == 400)
        #expect(refusal.code == "WEBHOOK_URL_REJECTED")
        #expect(server.connections == 0)
    }

    @Test func oneRefusedAddressAmongAllowedOnesRefusesTheDelivery() async throws {
        let server = try await WebhookTestServer.start(reply: Self.answer)
        defer { Task { await server.stop() } }
        // Loopback first, which `localhost` may reach, then a private address, which it may not.
        let client = Self.client(resolve: { _, port in
            [try SocketAddress(ipAddress: "127.0.0.1", port: port), try SocketAddress(ipAddress: "10.0.0.5", port: port)]
        })
        let error = await Self.failure { try await Self.post(client, "http://localhost:\(server.port)/hook") }
        #expect((error as? SubscriptionError)?.code == "WEBHOOK_URL_REJECTED")
        #expect(server.connections == 0)
    }

    @Test func aResolverFailureIsAResolutionError() async throws {
        struct NoSuchHost: Error {}
        let client = Self.client(resolve: { _, _ in throw NoSuchHost() })
        let error = await Self.failure { try await Self.post(client, "https://hooks.example.com/hook") }
        #expect((error as? WebhookDeliveryError)?.kind == .resolution)
        let empty = Self.client(resolve: { _, _ in [] })
        let none = await Self.failure { try await Self.post(empty, "https://hooks.example.com/hook") }
        #expect((none as? WebhookDeliveryError)?.kind == .resolution)
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let server = try await WebhookTestServer.start(reply: nil)
        defer { Task { await server.stop() } }
        let error = await Self.failure {
            try await Self.post(Self.client(), "http://127.0.0.1:\(server.port)/hook", timeout: .milliseconds(200))
        }
        #expect((error as? WebhookDeliveryError)?.kind == .timeout)
    }

    @Test func aRedirectIsReturnedNotFollowed() async throws {
        let server = try await WebhookTestServer.start(
            reply: .init(.found, headers: [("Location", "http://127.0.0.1:1/elsewhere")], body: Array("moved".utf8)))
        defer { Task { await server.stop() } }
        let response = try await Self.post(Self.client(), "http://127.0.0.1:\(server.port)/hook")
        #expect(response.status == 302)
        #expect(response.body == Array("moved".utf8))
        #expect(server.received.count == 1)
    }

    @Test func aBodyOverTheCapFailsTheDelivery() async throws {
        let server = try await WebhookTestServer.start(reply: .init(.ok, body: Array(repeating: 0x61, count: 64 * 1024 + 1)))
        defer { Task { await server.stop() } }
        let error = await Self.failure { try await Self.post(Self.client(), "http://127.0.0.1:\(server.port)/hook") }
        #expect((error as? WebhookDeliveryError)?.kind == .responseTooLarge)
    }

    @Test func aBodyOfExactlyTheCapIsReturned() async throws {
        let server = try await WebhookTestServer.start(reply: .init(.ok, body: Array(repeating: 0x61, count: 64 * 1024)))
        defer { Task { await server.stop() } }
        let response = try await Self.post(Self.client(), "http://127.0.0.1:\(server.port)/hook")
        #expect(response.body.count == 64 * 1024)
    }

    @Test func aClosedPortIsAConnectionError() async throws {
        // Port 1 (privileged, unused here): nothing accepts there. A port just closed could be
        // taken meanwhile by a test running in parallel.
        let error = await Self.failure { try await Self.post(Self.client(), "http://127.0.0.1:1/hook") }
        #expect((error as? WebhookDeliveryError)?.kind == .connection)
    }
}
