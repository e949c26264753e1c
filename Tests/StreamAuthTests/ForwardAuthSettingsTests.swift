import NIOCore
import ServerSupport
import Testing
@testable import StreamAuth

@Suite("Forward-auth settings")
struct ForwardAuthSettingsTests {
    private func settings(_ text: String) throws -> AuthSettings {
        var settings = AuthSettings()
        try settings.apply(ConfigurationFile(text: text, path: "origin.conf"))
        return settings
    }

    /// The problem `text` is refused with, or `nil` when it is accepted.
    private func problem(_ text: String) -> String? {
        do {
            _ = try settings(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func keysAndDefaults() throws {
        let defaults = AuthSettings()
        #expect(defaults.forwardAuthURL == nil)
        #expect(defaults.forwardAuthCache == .seconds(5) && defaults.forwardAuthTimeout == .seconds(2))
        let read = try settings("""
            forward_auth_url = "http://127.0.0.1:9000/auth?tenant=a"
            forward_auth_cache = "30s"
            forward_auth_timeout = "500ms"
            metrics_scope = "admin"
            """)
        #expect(read.isEnabled)
        #expect(read.forwardAuthURL == ForwardAuthEndpoint(host: "127.0.0.1", port: 9000, target: "/auth?tenant=a"))
        #expect(read.forwardAuthCache == .seconds(30) && read.forwardAuthTimeout == .milliseconds(500))
        #expect(try settings("forward_auth_url = \"http://a.test\"\nforward_auth_cache = \"0s\"").forwardAuthCache == .zero)
    }

    @Test func urls() throws {
        #expect(try ForwardAuthEndpoint(url: "http://auth.internal") == ForwardAuthEndpoint(host: "auth.internal", port: 80, target: "/"))
        #expect(try ForwardAuthEndpoint(url: "HTTP://auth.internal?x=1") == ForwardAuthEndpoint(host: "auth.internal", port: 80, target: "/?x=1"))
        let v6 = try ForwardAuthEndpoint(url: "http://[::1]:9000/check")
        #expect(v6 == ForwardAuthEndpoint(host: "::1", port: 9000, target: "/check"))
        #expect(v6.hostHeader == "[::1]:9000")
        #expect(v6.description == "http://[::1]:9000/check")
    }

    // Each bad URL is refused at the line that sets it, saying what is wrong.
    @Test func badURLsAreRefused() {
        let cases: [(String, String)] = [
            ("https://auth.test/check", "https is not supported"),
            ("ftp://auth.test/", "must start with http://"),
            ("auth.test:9000", "must start with http://"),
            ("http://", "has no host"),
            ("http://:9000/", "has no host"),
            ("http://auth.test:0/", "port"),
            ("http://auth.test:99999/", "port"),
            ("http://auth.test:90a/", "port"),
            ("http://auth.test:/", "port"),
            ("http://user:pw@auth.test/", "user or password"),
            ("http://auth.test/check#x", "fragment"),
            ("http://auth.test/a b", "plain ASCII"),
            ("http://[::1/", "unclosed"),
        ]
        for (url, reason) in cases {
            let refused = problem("\n\nforward_auth_url = \"\(url)\"")
            #expect(refused?.contains(reason) == true, "\(url): \(refused ?? "accepted")")
            #expect(refused?.hasPrefix("origin.conf:3:") == true, "\(url): \(refused ?? "accepted")")
        }
        #expect(problem("forward_auth_url = 9000")?.contains("must be a string") == true)
    }

    @Test func badDurationsAreRefused() {
        for text in [
            "forward_auth_cache = \"5\"", "forward_auth_cache = \"soon\"", "forward_auth_cache = \"-1s\"", "forward_auth_cache = \"2h\"",
            "forward_auth_timeout = \"0s\"", "forward_auth_timeout = \"2 s\"", "forward_auth_timeout = \"5m\"", "forward_auth_timeout = 2",
        ] {
            let refused = problem(text)
            #expect(refused?.hasPrefix("origin.conf:1:") == true, "\(text): \(refused ?? "accepted")")
        }
    }

    // Forward auth decides alone: with keys or tokens as well, which would decide is unclear.
    @Test func forwardAuthWithKeysOrTokensIsRefused() async throws {
        let keys = problem("api_keys_file = \"/etc/ds/keys.toml\"\nforward_auth_url = \"http://127.0.0.1:9000/\"")
        #expect(keys?.contains("cannot be combined") == true)
        #expect(problem("forward_auth_url = \"http://127.0.0.1:9000/\"\njwt_hs256_secret_file = \"/etc/ds/jwt\"")?.contains("cannot be combined") == true)
        // Set in code, the same settings cannot be loaded either.
        var settings = AuthSettings()
        settings.forwardAuthURL = ForwardAuthEndpoint(host: "127.0.0.1", port: 9000, target: "/")
        settings.apiKeysFile = "/etc/ds/keys.toml"
        await #expect(throws: AuthConfigurationError.self) { _ = try await AuthPolicy.load(settings) }
        settings.apiKeysFile = nil
        let policy = try await AuthPolicy.load(settings)
        #expect(policy.forwardAuthority != nil && policy.authenticator == nil && policy.isEnabled)
    }
}
