import NIOConcurrencyHelpers

/// The authentication a server applies now, replaceable while it runs (a reload on `SIGHUP`
/// rotates keys without a restart). Requests read it once each; one in flight keeps the policy
/// it started with.
public final class AuthPolicy: Sendable {
    /// What a request is checked against.
    public struct Current: Sendable {
        /// `nil`: authentication is off, every request passes.
        public var authenticator: Authenticator?
        /// What the server's own endpoints need; `nil`: public.
        public var operationalScope: AccessScope?

        public init(authenticator: Authenticator?, operationalScope: AccessScope?) {
            self.authenticator = authenticator
            self.operationalScope = operationalScope
        }
    }

    private let state: NIOLockedValueBox<Current>

    public init(_ current: Current) {
        state = NIOLockedValueBox(current)
    }

    /// The policy `settings` describe, with its key files loaded (small synchronous file reads,
    /// at start and on reload, never on an event loop).
    public static func load(_ settings: AuthSettings) async throws(AuthConfigurationError) -> Current {
        Current(authenticator: try await settings.makeAuthenticator(), operationalScope: settings.metricsScope)
    }

    public var current: Current { state.withLockedValue { $0 } }

    public func replace(with current: Current) {
        state.withLockedValue { $0 = current }
    }
}
