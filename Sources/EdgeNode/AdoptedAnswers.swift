import NIOConcurrencyHelpers
import ServerSupport

/// The answers of one flight given another cursor (`EdgeService.adoptingCursor`): one per
/// distinct cursor, serialized once and shared by every waiter that gets that cursor. Waiters
/// whose cursor is at or past the upstream's all came from the same earlier answer, as a rule,
/// so they share one re-rendered answer rather than each building its own.
final class AdoptedAnswers: Sendable {
    private let byCursor = NIOLockedValueBox([String: UpstreamResponse]())

    /// The flight's answer with `cursor`, made by `make` the first time it is asked for.
    /// Called from the waiters' event loops; `make` runs outside the lock.
    func answer(with cursor: String, make: () -> UpstreamResponse) -> UpstreamResponse {
        if let known = byCursor.withLockedValue({ $0[cursor] }) { return known }
        let made = make()
        return byCursor.withLockedValue { answers in
            // Two loops may make it at once: the first one kept is the one everybody gets.
            if let known = answers[cursor] { return known }
            answers[cursor] = made
            return made
        }
    }

    /// Distinct cursors made so far (for tests).
    var count: Int { byCursor.withLockedValue { $0.count } }
}
