import NIOConcurrencyHelpers

/// The authentication a server applies now, replaceable while it runs (a reload on `SIGHUP`
/// rotates keys without a restart). Requests read it once each; one in flight keeps the policy
/// it started with.
public final class AuthPolicy: Sendable {
    /// What a request is checked against.
    public struct Current: Sendable {
        /// API keys and JWTs. With neither this nor `forwardAuthority`, authentication is off and
        /// every request passes.
        public var authenticator: Authenticator?
        /// Forward auth: when set, it decides every request that needs credentials (settings
        /// never hold it together with an authenticator).
        public var forwardAuthority: ForwardAuthority?
        /// What the server's own endpoints need; `nil`: public.
        public var operationalScope: AccessScope?
        /// What `/healthz` and `/readyz` need; `nil`: public.
        public var healthScope: AccessScope?

        public init(
            authenticator: Authenticator?, forwardAuthority: ForwardAuthority? = nil, operationalScope: AccessScope?,
            healthScope: AccessScope? = nil
        ) {
            self.authenticator = authenticator
            self.forwardAuthority = forwardAuthority
            self.operationalScope = operationalScope
            self.healthScope = healthScope
        }

        /// Whether requests are checked at all.
        public var isEnabled: Bool { authenticator != nil || forwardAuthority != nil }
    }

    private let state: NIOLockedValueBox<Current>

    public init(_ current: Current) {
        state = NIOLockedValueBox(current)
    }

    /// The policy `settings` describe, with its key files loaded (small synchronous file reads,
    /// at start and on reload, never on an event loop).
    /// - Parameter forwardAuthObserver: told what each forward-auth check came to (metrics).
    public static func load(
        _ settings: AuthSettings, forwardAuthObserver: ForwardAuthority.Observer? = nil
    ) async throws(AuthConfigurationError) -> Current {
        Current(
            authenticator: try await settings.makeAuthenticator(),
            forwardAuthority: try settings.makeForwardAuthority(observer: forwardAuthObserver),
            operationalScope: settings.metricsScope, healthScope: settings.healthScope)
    }

    public var current: Current { state.withLockedValue { $0 } }

    public func replace(with current: Current) {
        state.withLockedValue { $0 = current }
    }
}
