import NIOCore
import ServerSupport
import Testing

@Suite("ThrottledReport")
struct ThrottledReportTests {
    @Test func theFirstIsReportedAtOnceThenOncePerIntervalWithTheCount() {
        var report = ThrottledReport(interval: .seconds(10))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(report.record(now: start) == 1)
        #expect(report.record(now: start + .seconds(1)) == nil)
        #expect(report.record(now: start + .seconds(9)) == nil)
        #expect(report.record(now: start + .seconds(10)) == 3)
        #expect(report.record(now: start + .seconds(11)) == nil)
        #expect(report.record(now: start + .seconds(60)) == 2)
    }
}
