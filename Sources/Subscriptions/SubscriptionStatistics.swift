/// How subscriptions are doing, for metrics. Counts only grow; `subscriptions` and `failing`
/// are now.
public struct SubscriptionStatistics: Sendable, Equatable {
    public var subscriptions = 0
    /// Subscriptions whose last webhook delivery failed (`status: failed`).
    public var failing = 0
    /// Wakes issued (webhook deliveries started and wake events to publish).
    public var wakes = 0
    /// Webhook requests answered 2xx, and those that failed (error status, no answer, refused).
    public var webhookDeliveries = 0
    public var webhookFailures = 0
    /// Wake events appended to wake streams, and appends that failed (e.g. no such stream).
    public var wakeEventsWritten = 0
    public var wakeEventFailures = 0
    /// Callbacks, acks and releases refused as `FENCED`.
    public var fenced = 0

    public init() {}
}
