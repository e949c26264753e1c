import NIOConcurrencyHelpers

/// The `Authorization` an edge that checks credentials itself sends upstream for the readers it
/// has authorised (`nil`: none). Held in a box so that a reload (`SIGHUP`) can rotate it while
/// requests are in flight.
public final class UpstreamCredential: Sendable, Equatable {
    private let box: NIOLockedValueBox<String?>

    public init(_ value: String?) {
        box = NIOLockedValueBox(value)
    }

    /// The credential for the next request.
    public var value: String? { box.withLockedValue { $0 } }

    public func replace(with value: String?) {
        box.withLockedValue { $0 = value }
    }

    /// One box is one setting: equal only to itself.
    public static func == (lhs: UpstreamCredential, rhs: UpstreamCredential) -> Bool { lhs === rhs }
}
