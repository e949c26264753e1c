import ServerSupport
import Testing
@testable import StreamAuth

@Suite("Authentication settings")
struct AuthSettingsTests {
    @Test func fileKeysAreRead() throws {
        var settings = AuthSettings()
        #expect(!settings.isEnabled)
        try settings.apply(ConfigurationFile(text: """
            api_keys_file = "/etc/ds/keys.toml"
            jwt_es256_public_key_file = "/etc/ds/es.pem"
            jwt_issuer = "https://auth.test/"
            jwt_audience = "ds"
            metrics_scope = "admin"
            health_scope = "read"
            """, path: "test.conf"))
        #expect(settings.isEnabled)
        #expect(settings.healthScope == .read)
        #expect(settings.apiKeysFile == "/etc/ds/keys.toml")
        #expect(settings.jwtKeys == JWTAuthority.KeyFiles(es256PublicKey: "/etc/ds/es.pem"))
        #expect(settings.jwtIssuer == "https://auth.test/" && settings.jwtAudience == "ds")
        #expect(settings.metricsScope == .admin)
        try settings.apply(ConfigurationFile(text: "metrics_scope = \"public\"", path: "test.conf"))
        #expect(settings.metricsScope == nil)
    }

    @Test func anUnknownMetricsScopeIsRefused() {
        var settings = AuthSettings()
        #expect(throws: (any Error).self) {
            try settings.apply(ConfigurationFile(text: "metrics_scope = \"everyone\"", path: "test.conf"))
        }
        #expect(throws: (any Error).self) {
            try settings.apply(ConfigurationFile(text: "health_scope = \"nobody\"", path: "test.conf"))
        }
    }

    @Test func noCredentialSourceMeansNoAuthenticator() async throws {
        #expect(try await AuthSettings().makeAuthenticator() == nil)
    }
}
