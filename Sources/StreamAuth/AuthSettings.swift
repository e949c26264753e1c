import NIOCore
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
/// health_scope = "read"                                  # /healthz and /readyz: public (default) | …
/// ```
///
/// Or forward auth instead of keys and tokens (the two cannot be combined: when it is set the
/// endpoint decides every request that needs credentials; see `ForwardAuthority`):
///
/// ```toml
/// forward_auth_url = "http://127.0.0.1:9000/auth"        # http only, for now
/// forward_auth_cache = "5s"                              # how long a decision is reused; "0s": never
/// forward_auth_timeout = "2s"                            # then 503
/// ```
public struct AuthSettings: Sendable, Equatable {
    public var apiKeysFile: String?
    public var jwtKeys = JWTAuthority.KeyFiles()
    public var jwtIssuer: String?
    public var jwtAudience: String?
    /// What `/metrics` needs; `nil`: public.
    public var metricsScope: AccessScope?
    /// What `/healthz` and `/readyz` need; `nil`: public (load balancers probe without credentials).
    public var healthScope: AccessScope?
    /// The forward-auth endpoint; when set, it decides instead of keys and tokens.
    public var forwardAuthURL: ForwardAuthEndpoint?
    /// How long a forward-auth decision (allowed, 401, 403) is reused; zero: never.
    public var forwardAuthCache: TimeAmount = .seconds(5)
    /// Bound on one forward-auth check, connecting included; past it the request gets 503.
    public var forwardAuthTimeout: TimeAmount = .seconds(2)

    /// The longest `forward_auth_cache`: a revoked credential keeps working this long at most.
    public static let maxForwardAuthCache: TimeAmount = .hours(1)
    /// The longest `forward_auth_timeout`: requests wait this long for a decision at most.
    public static let maxForwardAuthTimeout: TimeAmount = .seconds(60)

    public init() {}

    public static let fileKeys: Set<String> = [
        "api_keys_file", "jwt_hs256_secret_file", "jwt_es256_public_key_file", "jwt_rs256_public_key_file",
        "jwt_issuer", "jwt_audience", "metrics_scope", "health_scope", "forward_auth_url", "forward_auth_cache", "forward_auth_timeout",
    ]

    public var isEnabled: Bool { apiKeysFile != nil || !jwtKeys.isEmpty || forwardAuthURL != nil }

    /// Refuses settings that cannot be meant: forward auth together with keys or tokens (which
    /// would decide a request?), and durations out of range.
    public func validate() throws(AuthConfigurationError) {
        if forwardAuthURL != nil && (apiKeysFile != nil || !jwtKeys.isEmpty) {
            throw AuthConfigurationError(
                "forward_auth_url cannot be combined with api_keys_file or a jwt_* key file: "
                    + "when set, the forward-auth endpoint decides every request (let it accept your keys or tokens)")
        }
        guard forwardAuthCache >= .zero, forwardAuthCache <= Self.maxForwardAuthCache else {
            throw AuthConfigurationError("forward_auth_cache must be between 0s and 1h")
        }
        guard forwardAuthTimeout > .zero, forwardAuthTimeout <= Self.maxForwardAuthTimeout else {
            throw AuthConfigurationError("forward_auth_timeout must be more than 0s and at most 60s")
        }
    }

    public mutating func apply(_ file: ConfigurationFile) throws {
        if let value = try file.string("api_keys_file") { apiKeysFile = value }
        if let value = try file.string("jwt_hs256_secret_file") { jwtKeys.hs256Secret = value }
        if let value = try file.string("jwt_es256_public_key_file") { jwtKeys.es256PublicKey = value }
        if let value = try file.string("jwt_rs256_public_key_file") { jwtKeys.rs256PublicKey = value }
        if let value = try file.string("jwt_issuer") { jwtIssuer = value }
        if let value = try file.string("jwt_audience") { jwtAudience = value }
        if let value = try file.string("metrics_scope") { metricsScope = try Self.scope(value, key: "metrics_scope", in: file) }
        if let value = try file.string("health_scope") { healthScope = try Self.scope(value, key: "health_scope", in: file) }
        if let value = try file.string("forward_auth_url") {
            do {
                forwardAuthURL = try ForwardAuthEndpoint(url: value)
            } catch {
                throw file.problem("forward_auth_url", error.description)
            }
        }
        if let value = try file.duration("forward_auth_cache") {
            guard value <= Self.maxForwardAuthCache else {
                throw file.problem("forward_auth_cache", "'forward_auth_cache' must be at most 1h (a revoked credential works that long)")
            }
            forwardAuthCache = value
        }
        if let value = try file.duration("forward_auth_timeout") {
            guard value > .zero, value <= Self.maxForwardAuthTimeout else {
                throw file.problem("forward_auth_timeout", "'forward_auth_timeout' must be more than 0s and at most 60s")
            }
            forwardAuthTimeout = value
        }
        do {
            try validate()
        } catch {
            throw file.problem("forward_auth_url", error.description)
        }
    }

    /// A scope setting's value: `public` (nothing needed) or a scope's name.
    private static func scope(_ value: String, key: String, in file: ConfigurationFile) throws -> AccessScope? {
        if value == "public" { return nil }
        guard let scope = AccessScope(name: value) else {
            throw file.problem(key, "'\(key)' must be public, read, write or admin")
        }
        return scope
    }

    /// Loads the key files (blocking reads: at start-up or reload). `nil` when authentication is
    /// off or forward auth decides.
    public func makeAuthenticator() async throws(AuthConfigurationError) -> Authenticator? {
        try validate()
        guard apiKeysFile != nil || !jwtKeys.isEmpty else { return nil }
        let keys = try apiKeysFile.map { path throws(AuthConfigurationError) in try APIKeys.load(path: path) }
        let jwt = jwtKeys.isEmpty ? nil : try await JWTAuthority.load(jwtKeys, issuer: jwtIssuer, audience: jwtAudience)
        return Authenticator(apiKeys: keys, jwt: jwt)
    }

    /// The forward authority these settings describe, or `nil` when forward auth is off. Each
    /// call makes a new one, with no remembered decisions: a reload forgets them all.
    public func makeForwardAuthority(observer: ForwardAuthority.Observer? = nil) throws(AuthConfigurationError) -> ForwardAuthority? {
        try validate()
        guard let forwardAuthURL else { return nil }
        return ForwardAuthority(
            client: ForwardAuthClient(endpoint: forwardAuthURL, timeout: forwardAuthTimeout), cacheLifetime: forwardAuthCache,
            observer: observer)
    }
}
