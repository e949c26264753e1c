import NIOConcurrencyHelpers
import NIOCore

/// A monotonic clock that stands still until a test moves it, installed as the edge's
/// `EdgeConfiguration.clock`: cached answers age exactly as far as the test says, with no
/// sleeping and no dependence on how fast the machine is.
final class ManualClock: Sendable {
    private let current = NIOLockedValueBox(NIODeadline.now())

    func now() -> NIODeadline { current.withLockedValue { $0 } }

    func advance(by amount: TimeAmount) {
        current.withLockedValue { $0 = $0 + amount }
    }
}
