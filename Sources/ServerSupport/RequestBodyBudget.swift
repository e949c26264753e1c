import NIOConcurrencyHelpers

/// The request-body bytes all connections of a server hold while their requests are still
/// arriving, against a budget: many slow or stalled uploads cannot add up to more than it,
/// whatever each one's own limit. Shared by every event loop of one server.
public final class RequestBodyBudget: Sendable {
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Takes `bytes` from the budget, or nothing if they do not fit.
    public func reserve(_ bytes: Int) -> Bool {
        used.withLockedValue { used in
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    /// Gives back bytes taken earlier.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.withLockedValue { $0 = max(0, $0 - bytes) }
    }

    /// Bytes taken now.
    public var inUse: Int { used.withLockedValue { $0 } }
}
