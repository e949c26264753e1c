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
        return limits
    }

    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func anIdleConnectionClosesQuietlyAfterTheIdleTimeout() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        #expect(timeouts.nextDeadline == at(60))
        #expect(timeouts.expired(now: at(59), waiting: 0) == nil)
        #expect(timeouts.expired(now: at(60), waiting: 0) == .idle)
    }

    @Test func theHeaderTimeoutRunsFromTheFirstByteNotFromTheLastOne() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.bytesArrived(now: at(30))
        #expect(timeouts.nextDeadline == at(40))
        // A slowloris client keeps sending a byte now and then: that does not move the deadline.
        timeouts.bytesArrived(now: at(35))
        timeouts.bytesArrived(now: at(39))
        #expect(timeouts.nextDeadline == at(40))
        #expect(timeouts.expired(now: at(40), waiting: 0) == .requestTimeout)
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
        #expect(timeouts.expired(now: at(8), waiting: 0) == nil)
        #expect(timeouts.expired(now: at(9), waiting: 0) == .requestTimeout)
    }

    @Test func aStalledUploadIsCutAfterTheGracePeriod() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.bodyReceived(10, now: at(0))
        #expect(timeouts.expired(now: at(4), waiting: 0) == nil)
        #expect(timeouts.expired(now: at(5), waiting: 0) == .requestTimeout)
    }

    @Test func aBurstUpFrontDoesNotBuyALongSilence() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        // 4 MiB at once would buy hours at 100 bytes/s; a gap of `bodyTimeout` still ends it.
        timeouts.bodyReceived(4 << 20, now: at(1))
        #expect(timeouts.nextDeadline == at(6))
        timeouts.bodyReceived(1, now: at(5))
        #expect(timeouts.nextDeadline == at(10))
        #expect(timeouts.expired(now: at(10), waiting: 0) == .requestTimeout)
    }

    @Test func aRequestBeingAnsweredHasNoDeadline() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        #expect(timeouts.nextDeadline == nil)
        #expect(timeouts.expired(now: at(100_000), waiting: 0) == nil)
    }

    @Test func idlenessCountsFromWhenTheResponseLeftNotFromWhenItWasWritten() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        timeouts.responseEnded(now: at(1))
        // A large answer still on its way to a slow reader: not idle.
        #expect(timeouts.nextDeadline == nil)
        #expect(timeouts.expired(now: at(500), waiting: 1 << 20) == nil)
        timeouts.responseFlushed(now: at(500))
        #expect(timeouts.nextDeadline == at(560))
    }

    @Test func bytesOfTheNextRequestArrivingDuringAnAnswerStartItsHeaderTimeout() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        timeouts.bytesArrived(now: at(1))
        timeouts.responseEnded(now: at(2))
        timeouts.responseFlushed(now: at(2))
        #expect(timeouts.phase == .head(since: at(2)))
        #expect(timeouts.nextDeadline == at(12))
    }

    @Test func aClientThatStopsReadingIsCutWhenNothingMoves() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        timeouts.writabilityChanged(writable: false, waiting: 4 << 20, now: at(1))
        #expect(timeouts.nextDeadline == at(31))
        #expect(timeouts.expired(now: at(31), waiting: 4 << 20) == .sendStalled)
    }

    @Test func aSlowReaderThatMakesProgressGetsAnotherSendTimeout() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        timeouts.writabilityChanged(writable: false, waiting: 4 << 20, now: at(1))
        #expect(timeouts.expired(now: at(31), waiting: 3 << 20) == nil)
        #expect(timeouts.nextDeadline == at(61))
        #expect(timeouts.expired(now: at(61), waiting: 3 << 20) == .sendStalled)
    }

    @Test func writableAgainEndsTheStall() {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.requestEnded()
        timeouts.writabilityChanged(writable: false, waiting: 100_000, now: at(1))
        timeouts.writabilityChanged(writable: true, waiting: 0, now: at(2))
        #expect(timeouts.nextDeadline == nil)
    }

    @Test(arguments: [0, 1, 99, 100, 1 << 40, Int.max])
    func rateArithmeticNeverOverflows(bytes: Int) {
        var timeouts = ConnectionTimeouts(limits: limits, now: start)
        timeouts.headReceived(now: at(0))
        timeouts.bodyReceived(bytes, now: at(0))
        timeouts.bodyReceived(bytes, now: at(0))
        #expect(timeouts.nextDeadline != nil)
        _ = timeouts.expired(now: at(1), waiting: 0)
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
