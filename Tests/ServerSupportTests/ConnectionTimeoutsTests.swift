import NIOCore
import ServerSupport
import Testing

@Suite("ConnectionTimeouts: when a connection has taken too long")
struct ConnectionTimeoutsTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    var limits: ConnectionLimits {
        var limits = ConnectionLimits()
        limits.headerTimeout = .seconds(10)
        limits.idleTimeout = .seconds(60)
        limits.bodyTimeout = .seconds(5)
        limits.minBodyBytesPerSecond = 100
        limits.sendTimeout = .seconds(30)
        limits.minSendBytesPerSecond = 100
        return limits
    }

    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    /// A connection whose request (head at 0 s, no body) is being answered.
    func answering() -> ConnectionTimeouts {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        return timeouts
    }

    @Test func anIdleConnectionClosesQuietlyAfterTheIdleTimeout() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        #expect(timeouts.nextDeadline == at(60))
        #expect(timeouts.expired(now: at(59), drained: 0) == nil)
        #expect(timeouts.expired(now: at(60), drained: 0) == .idle)
    }

    @Test func theHeaderTimeoutRunsFromTheFirstByteNotFromTheLastOne() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.bytesArrived(now: at(30))
        #expect(timeouts.nextDeadline == at(40))
        // A slowloris client keeps sending a byte now and then: that does not move the deadline.
        timeouts.bytesArrived(now: at(35))
        timeouts.bytesArrived(now: at(39))
        #expect(timeouts.nextDeadline == at(40))
        #expect(timeouts.expired(now: at(40), drained: 0) == .requestTimeout)
    }

    @Test func aBodyMustKeepUpTheMinimumRateAfterItsGracePeriod() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.bytesArrived(now: at(0))
        timeouts.headReceived(now: at(1))
        // Nothing yet: allowed until the grace period ends.
        #expect(timeouts.nextDeadline == at(6))
        // 300 bytes at 100 bytes/s buy three more seconds.
        timeouts.bodyReceived(300, now: at(4))
        #expect(timeouts.nextDeadline == at(9))
        #expect(timeouts.expired(now: at(8), drained: 0) == nil)
        #expect(timeouts.expired(now: at(9), drained: 0) == .requestTimeout)
    }

    @Test func aStalledUploadIsCutAfterTheGracePeriod() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.bodyReceived(10, now: at(0))
        #expect(timeouts.expired(now: at(4), drained: 0) == nil)
        #expect(timeouts.expired(now: at(5), drained: 0) == .requestTimeout)
    }

    @Test func aBurstUpFrontDoesNotBuyALongSilence() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        // 4 MiB at once would buy hours at 100 bytes/s; a gap of `bodyTimeout` still ends it.
        timeouts.bodyReceived(4 << 20, now: at(1))
        #expect(timeouts.nextDeadline == at(6))
        timeouts.bodyReceived(1, now: at(5))
        #expect(timeouts.nextDeadline == at(10))
        #expect(timeouts.expired(now: at(10), drained: 0) == .requestTimeout)
    }

    @Test func aRequestBeingAnsweredHasNoDeadline() {
        var timeouts = answering()
        #expect(timeouts.nextDeadline == nil)
        #expect(timeouts.expired(now: at(100_000), drained: 0) == nil)
    }

    @Test func idlenessCountsFromWhenTheResponseLeftNotFromWhenItWasWritten() {
        var timeouts = answering()
        timeouts.responseEnded(now: at(1))
        timeouts.outputChanged(pending: true, drained: 0, now: at(1))
        // A large answer on its way to a reader that keeps up: not idle, and not stalled.
        #expect(timeouts.nextDeadline == at(31))
        #expect(timeouts.expired(now: at(31), drained: 500_000) == nil)
        timeouts.responseFlushed(now: at(40))
        timeouts.outputChanged(pending: false, drained: 1 << 20, now: at(40))
        #expect(timeouts.nextDeadline == at(100))
    }

    @Test func bytesOfTheNextRequestArrivingDuringAnAnswerStartItsHeaderTimeout() {
        var timeouts = answering()
        timeouts.bytesArrived(now: at(1))
        timeouts.responseEnded(now: at(2))
        timeouts.responseFlushed(now: at(2))
        #expect(timeouts.phase == .head(since: at(2)))
        #expect(timeouts.nextDeadline == at(12))
    }

    /// The hole a review found: a response written, the client reading nothing, yet the channel
    /// still writable (under NIO's high water mark). Bytes wait, so the send watch runs.
    @Test func aClientThatStopsReadingIsCutEvenWhileTheChannelIsWritable() {
        var timeouts = answering()
        timeouts.responseEnded(now: at(1))
        timeouts.outputChanged(pending: true, drained: 0, now: at(1))
        #expect(timeouts.nextDeadline == at(31))
        #expect(timeouts.expired(now: at(31), drained: 0) == .sendStalled)
    }

    /// 100 bytes/s over 30 s: 3,000 bytes per period, or the connection goes.
    @Test func aReaderMustKeepUpTheMinimumSendRate() {
        var timeouts = answering()
        timeouts.outputChanged(pending: true, drained: 10_000, now: at(1))
        #expect(timeouts.expired(now: at(31), drained: 13_000) == nil)
        #expect(timeouts.nextDeadline == at(61))
        // A segment a minute is not reading.
        #expect(timeouts.expired(now: at(61), drained: 14_000) == .sendStalled)
    }

    @Test func nothingWaitingEndsTheWatch() {
        var timeouts = answering()
        timeouts.outputChanged(pending: true, drained: 0, now: at(1))
        timeouts.outputChanged(pending: false, drained: 100_000, now: at(2))
        #expect(timeouts.nextDeadline == nil)
    }

    @Test(arguments: [0, 1, 99, 100, 1 << 40, Int.max])
    func rateArithmeticNeverOverflows(bytes: Int) {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.bodyReceived(bytes, now: at(0))
        timeouts.bodyReceived(bytes, now: at(0))
        #expect(timeouts.nextDeadline != nil)
        _ = timeouts.expired(now: at(1), drained: 0)
        timeouts.outputChanged(pending: true, drained: Int.min + 1, now: at(1))
        _ = timeouts.expired(now: at(100), drained: Int.max)
    }

    @Test func limitsStayBelowTheDescriptorLimit() {
        var limits = ConnectionLimits()
        limits.maxConnections = 50_000
        #expect(limits.effectiveMaxConnections(descriptorLimit: 20_000) == 20_000 - ConnectionLimits.reservedDescriptors)
        #expect(limits.effectiveMaxConnections(descriptorLimit: 1_000_000) == 50_000)
        #expect(limits.effectiveMaxConnections(descriptorLimit: 100) == 50)
        limits.maxConnections = 0
        #expect(limits.effectiveMaxConnections(descriptorLimit: 20_000) == 1)
    }
}
