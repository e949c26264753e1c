import Prometheus
import NIOConcurrencyHelpers
import Subscriptions

/// The subscription registry's counts as Prometheus metrics (`ds_origin_subscription_*`),
/// brought up to date when `/metrics` is rendered.
final class SubscriptionMetrics: Sendable {
    private let subscriptions: Gauge
    private let failing: Gauge
    private let wakes: Counter
    private let deliveries: Counter
    private let failures: Counter
    private let eventsWritten: Counter
    private let eventFailures: Counter
    private let fenced: Counter
    private let last = NIOLockedValueBox(SubscriptionStatistics())

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ds", subsystem: "origin_subscription", metricName: metric, unitName: unit, helpText: help)
        }
        subscriptions = registry.makeGauge(descriptor: name("subscriptions", "", "Subscriptions (section 6)"))
        failing = registry.makeGauge(descriptor: name("failing", "", "Subscriptions whose last webhook delivery failed"))
        wakes = registry.makeCounter(descriptor: name("wakes", "total", "Wakes issued"))
        deliveries = registry.makeCounter(descriptor: name("webhook_deliveries", "total", "Webhook requests answered 2xx"))
        failures = registry.makeCounter(descriptor: name("webhook_failures", "total", "Webhook requests that failed (retried)"))
        eventsWritten = registry.makeCounter(descriptor: name("wake_events", "total", "Wake events appended to wake streams"))
        eventFailures = registry.makeCounter(descriptor: name("wake_event_failures", "total", "Wake events that could not be appended"))
        fenced = registry.makeCounter(descriptor: name("fenced", "total", "Callbacks, acks and releases refused as FENCED"))
    }

    func update(_ now: SubscriptionStatistics) {
        let before = last.withLockedValue { last in
            defer { last = now }
            return last
        }
        subscriptions.set(Double(now.subscriptions))
        failing.set(Double(now.failing))
        wakes.increment(by: Int64(max(0, now.wakes - before.wakes)))
        deliveries.increment(by: Int64(max(0, now.webhookDeliveries - before.webhookDeliveries)))
        failures.increment(by: Int64(max(0, now.webhookFailures - before.webhookFailures)))
        eventsWritten.increment(by: Int64(max(0, now.wakeEventsWritten - before.wakeEventsWritten)))
        eventFailures.increment(by: Int64(max(0, now.wakeEventFailures - before.wakeEventFailures)))
        fenced.increment(by: Int64(max(0, now.fenced - before.fenced)))
    }
}
