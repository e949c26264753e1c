import ServerSupport
import Testing

/// The Space-Saving sketch behind the dashboards' top-streams tables.
@Suite("HeavyHitters")
struct HeavyHittersTests {
    private func sketch(_ capacity: Int) -> HeavyHitters<String, Int> {
        HeavyHitters(capacity: capacity) { 0 }
    }

    @Test func belowCapacityEveryCountIsExact() {
        var hitters = sketch(4)
        for (key, times) in [("a", 5), ("b", 3), ("c", 1)] {
            for _ in 0..<times { hitters.record(key) { $0 += 10 } }
        }
        let top = hitters.top(10)
        #expect(top.map(\.key) == ["a", "b", "c"])
        #expect(top.map(\.count) == [5, 3, 1])
        #expect(top.allSatisfy { $0.error == 0 })
        #expect(top.map(\.tally) == [50, 30, 10])
        #expect(hitters.total == 9)
    }

    @Test func aNewKeyTakesTheSmallestPlaceAndInheritsItsCountAsError() {
        var hitters = sketch(2)
        for _ in 0..<5 { hitters.record("a") }
        for _ in 0..<2 { hitters.record("b") }
        hitters.record("c") { $0 += 1 }
        #expect(hitters.count == 2)
        let top = hitters.top(2)
        #expect(top[0].key == "a" && top[0].count == 5)
        #expect(top[1].key == "c" && top[1].count == 3 && top[1].error == 2)
        // The tally starts afresh for the newcomer: it is counted from when it was taken in.
        #expect(top[1].tally == 1)
    }

    /// The guarantee: a key with more than total ÷ capacity of the weight (here each heavy key
    /// has a sixth, the bound is a tenth) is tracked, and its
    /// true count lies within [count - error, count].
    @Test func heavyKeysAreAlwaysFoundAmongManyLightOnes() {
        var hitters = sketch(10)
        var truth: [String: Int] = [:]
        var generator = SplitMix(seed: 7)
        for step in 0..<20_000 {
            let key = step % 2 == 0 ? "heavy-\(step % 3)" : "light-\(generator.next() % 5_000)"
            truth[key, default: 0] += 1
            hitters.record(key)
        }
        let tracked = Dictionary(uniqueKeysWithValues: hitters.top(10).map { ($0.key, $0) })
        for key in ["heavy-0", "heavy-1", "heavy-2"] {
            let entry = try! #require(tracked[key])
            let real = truth[key]!
            #expect(entry.count >= real && entry.count - entry.error <= real)
        }
        #expect(hitters.top(3).map(\.key).sorted() == ["heavy-0", "heavy-1", "heavy-2"])
    }

    @Test func weightsAndUntrackedUpdates() {
        var hitters = sketch(1)
        hitters.record("a", weight: 10)
        hitters.updateIfTracked("a") { $0 = 42 }
        hitters.updateIfTracked("zzz") { $0 = 1 }  // not tracked: nothing changes
        hitters.record("b", weight: -5)  // a negative weight counts as nothing
        #expect(hitters.top(1).first?.key == "b")
        #expect(hitters.top(1).first?.count == 10)
        #expect(hitters.top(1).first?.error == 10)
        #expect(hitters.total == 10)
        #expect(hitters.top(0).isEmpty)
    }
}

/// A small deterministic generator, so the test sees the same keys every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
