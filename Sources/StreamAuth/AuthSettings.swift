import ServerSupport

/// How a server authenticates, as its configuration file says. Authentication is on when any
/// credential source is configured, and off otherwise.
///
/// ```toml
/// api_keys_file = "/etc/durable-streams/keys.toml"       # see APIKeys
/// jwt_hs256_secret_file = "/etc/durable-streams/jwt.secret"
/// jwt_es256_public_key_file = "/etc/durable-streams/jwt-es256.pem"
/// jwt_rs256_public_key_file = "/etc/durable-streams/jwt-rs256.pem"
/// jwt_issuer = "https://auth.example.com/"               # required iss, optional
/// jwt_audience = "durable-streams"                       # required aud, optional
/// metrics_scope = "admin"                                # public (default) | read | write | admin
/// ```
public struct AuthSettings: Sendable, Equatable {
    public var apiKeysFile: String?
    public var jwtKeys = JWTAuthority.KeyFiles()
    public var jwtIssuer: String?
    public var jwtAudience: String?
    /// What `/metrics` needs; `nil`: public.
    public var metricsScope: AccessScope?

    public init() {}

    public static let fileKeys: Set<String> = [
        "api_keys_file", "jwt_hs256_secret_file", "jwt_es256_public_key_file", "jwt_rs256_public_key_file",
        "jwt_issuer", "jwt_audience", "metrics_scope",
    ]

    public var isEnabled: Bool { apiKeysFile != nil || !jwtKeys.isEmpty }

    public mutating func apply(_ file: ConfigurationFile) throws {
        if let value = try file.string("api_keys_file") { apiKeysFile = value }
        if let value = try file.string("jwt_hs256_secret_file") { jwtKeys.hs256Secret = value }
        if let value = try file.string("jwt_es256_public_key_file") { jwtKeys.es256PublicKey = value }
        if let value = try file.string("jwt_rs256_public_key_file") { jwtKeys.rs256PublicKey = value }
        if let value = try file.string("jwt_issuer") { jwtIssuer = value }
        if let value = try file.string("jwt_audience") { jwtAudience = value }
        if let value = try file.string("metrics_scope") {
            if value == "public" {
                metricsScope = nil
            } else {
                guard let scope = AccessScope(name: value) else {
                    throw file.problem("metrics_scope", "'metrics_scope' must be public, read, write or admin")
                }
                metricsScope = scope
            }
        }
    }

    /// Loads the key files (blocking reads: at start-up or reload). `nil` when authentication is off.
    public func makeAuthenticator() async throws(AuthConfigurationError) -> Authenticator? {
        guard isEnabled else { return nil }
        let keys = try apiKeysFile.map { path throws(AuthConfigurationError) in try APIKeys.load(path: path) }
        let jwt = jwtKeys.isEmpty ? nil : try await JWTAuthority.load(jwtKeys, issuer: jwtIssuer, audience: jwtAudience)
        return Authenticator(apiKeys: keys, jwt: jwt)
    }
}
