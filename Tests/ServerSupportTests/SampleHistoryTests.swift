import ServerSupport
import Testing

private struct Tick: HistorySample, Equatable {
    var requests: Int
    var open: Int

    mutating func absorb(_ later: Tick) {
        requests += later.requests
        open = later.open
    }
}

/// The bounded per-second and per-minute history behind the dashboards.
@Suite("SampleHistory")
struct SampleHistoryTests {
    @Test func keepsTheLastSecondsAndDropsTheOldest() {
        var history = SampleHistory<Tick>(secondCapacity: 3, minuteCapacity: 2)
        for second in Int64(1_000)...1_004 { history.record(Tick(requests: Int(second - 999), open: 0), at: second) }
        #expect(history.seconds().map(\.time) == [1_002, 1_003, 1_004])
        #expect(history.seconds().map(\.sample.requests) == [3, 4, 5])
        #expect(history.seconds(after: 1_003).map(\.time) == [1_004])
        #expect(history.seconds(after: 1_004).isEmpty)
        #expect(history.seconds(after: 0).count == 3)
        #expect(history.latest == 1_004)
    }

    @Test func aLateSampleCoversTheGapAndAnOldOneIsIgnored() {
        var history = SampleHistory<Tick>()
        history.record(Tick(requests: 1, open: 0), at: 100)
        history.record(Tick(requests: 4, open: 0), at: 104)
        history.record(Tick(requests: 9, open: 0), at: 104)  // not after the newest
        history.record(Tick(requests: 9, open: 0), at: 50)  // a clock stepped back
        #expect(history.seconds().map(\.span) == [1, 4])
        #expect(history.seconds().map(\.sample.requests) == [1, 4])
    }

    @Test func minutesAddCountsKeepTheLastGaugeAndAreBounded() {
        var history = SampleHistory<Tick>(secondCapacity: 10, minuteCapacity: 2)
        // 60 s of minute 0 (times 0…59), then 10 s of minute 1, 10 s of minute 2, 1 s of minute 3.
        for second in Int64(0)..<60 { history.record(Tick(requests: 1, open: Int(second)), at: second) }
        #expect(history.minutes().count == 1)
        #expect(history.minutes()[0].sample == Tick(requests: 60, open: 59))
        #expect(history.minutes()[0].span == 60)
        for second in Int64(60)..<70 { history.record(Tick(requests: 2, open: 7), at: second) }
        for second in Int64(120)..<130 { history.record(Tick(requests: 3, open: 8), at: second) }
        history.record(Tick(requests: 5, open: 9), at: 180)
        let minutes = history.minutes()
        // Two finished minutes kept (the oldest dropped), then the minute in progress.
        #expect(minutes.map(\.time) == [60, 120, 180])
        #expect(minutes.map(\.sample.requests) == [20, 30, 5])
        #expect(minutes.map(\.sample.open) == [7, 8, 9])
        // The first second of minute 2 came 51 s after the last of minute 1.
        #expect(minutes[1].span == 51 + 9)
    }

    @Test func negativeTimesFallInTheirMinute() {
        var history = SampleHistory<Tick>()
        history.record(Tick(requests: 1, open: 0), at: -61)
        #expect(history.minutes().first?.time == -120)
    }
}
