import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeNode

/// SplitMix64: a tiny deterministic generator so the workload is the same on every run.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func at(_ nanoseconds: UInt64) -> NIODeadline { .uptimeNanoseconds(nanoseconds) }

private func response(
    _ body: String,
    freshUntil: NIODeadline? = nil,
    staleUntil: NIODeadline? = nil,
    storedAt: NIODeadline = at(1_000)
) -> CachedResponse {
    CachedResponse(
        status: .ok,
        headers: ["Content-Type": "application/octet-stream", "ETag": "\"e1\""],
        body: ByteBuffer(string: body),
        storedAt: storedAt,
        freshUntil: freshUntil,
        staleUntil: staleUntil,
        etag: "\"e1\""
    )
}

private func sized(_ bytes: Int) -> CachedResponse { response(String(repeating: "x", count: bytes)) }

private func key(_ stream: String, _ variant: String = "offset=-1", credentials: String? = nil) -> CacheKey {
    CacheKey(stream: stream, variant: variant, credentials: credentials)
}

@Suite("ResponseCache: byte budget, SIEVE eviction, purge, freshness")
struct ResponseCacheTests {
    @Test func putThenGetReturnsTheStoredResponse() {
        let cache = ResponseCache(budgetBytes: 10_000)
        let k = key("/v1/stream/a")
        #expect(cache.get(k) == nil)
        let stored = response("hello", freshUntil: at(5_000), staleUntil: at(9_000))
        #expect(cache.put(k, stored))
        let got = cache.get(k)
        #expect(got?.status == .ok)
        #expect(got?.body == ByteBuffer(string: "hello"))
        #expect(got?.headers["Content-Type"] == ["application/octet-stream"])
        #expect(got?.etag == "\"e1\"")
        #expect(got?.storedAt == at(1_000))
        #expect(got?.freshUntil == at(5_000))
        #expect(got?.staleUntil == at(9_000))
        #expect(cache.get(key("/v1/stream/a", "offset=5")) == nil)
        #expect(cache.get(key("/v1/stream/a", credentials: "u1")) == nil)
        #expect(cache.stats == .init(bytes: stored.cost(for: k), entries: 1, evictions: 0, budget: 10_000))
        #expect(cache.invariantViolation() == nil)
    }

    @Test func costCountsBodyHeadersKeyAndOverhead() {
        let k = key("/s", "offset=-1", credentials: "abc")
        let r = CachedResponse(
            status: .ok, headers: ["A": "12", "Bc": "3"], body: ByteBuffer(string: "12345"),
            storedAt: at(0), freshUntil: nil, staleUntil: nil, etag: nil)
        // body 5 + headers (1+2)+(2+1) + the serialized head + key 2+9+3 + overhead
        let headLines = "HTTP/1.1 200 OK\r\nA: 12\r\nBc: 3\r\nContent-Length: 5\r\n".utf8.count
        #expect(r.encoded.headLines.readableBytes == headLines)
        #expect(r.cost(for: k) == 5 + 6 + headLines + 14 + CachedResponse.entryOverhead)
    }

    @Test func replacingAnEntryUpdatesTheByteAccounting() {
        let cache = ResponseCache(budgetBytes: 10_000)
        let k = key("/s/a")
        let other = key("/s/b")
        cache.put(other, sized(10))
        cache.put(k, sized(100))
        #expect(cache.stats.bytes == sized(10).cost(for: other) + sized(100).cost(for: k))
        cache.put(k, sized(1_000))
        #expect(cache.stats.bytes == sized(10).cost(for: other) + sized(1_000).cost(for: k))
        #expect(cache.stats.entries == 2)
        #expect(cache.get(k)?.body.readableBytes == 1_000)
        cache.put(k, sized(3))
        #expect(cache.stats.bytes == sized(10).cost(for: other) + sized(3).cost(for: k))
        #expect(cache.stats.entries == 2)
        #expect(cache.stats.evictions == 0)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func theTotalNeverExceedsTheBudgetUnderAWorkloadTenTimesItsSize() {
        let budget = 64 * 1024
        let cache = ResponseCache(budgetBytes: budget)
        var rng = SeededGenerator(state: 42)
        let keys = (0..<400).map { key("/s/\($0 % 37)", "offset=\($0)", credentials: $0 % 5 == 0 ? "u\($0 % 3)" : nil) }
        var inserted = 0
        var operations = 0
        while inserted < 10 * budget {
            let k = keys[Int.random(in: 0..<keys.count, using: &rng)]
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<60:
                let r = sized(Int.random(in: 0...4_000, using: &rng))
                cache.put(k, r)
                inserted += r.cost(for: k)
            case 60..<95:
                _ = cache.get(k)
            case 95..<98:
                cache.remove(k)
            default:
                cache.purge(stream: k.stream)
            }
            operations += 1
            let stats = cache.stats
            #expect(stats.bytes <= budget)
            #expect(stats.bytes >= 0)
            if stats.bytes > budget { break }
        }
        #expect(operations > 100)
        #expect(cache.stats.evictions > 0)

        // Recount through the public surface.
        var recountBytes = 0
        var recountEntries = 0
        for k in keys {
            if let r = cache.get(k) {
                recountBytes += r.cost(for: k)
                recountEntries += 1
            }
        }
        let stats = cache.stats
        #expect(stats.bytes == recountBytes)
        #expect(stats.entries == recountEntries)
        #expect(stats.budget == budget)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func anEntryLargerThanTheBudgetIsNotStored() {
        let small = key("/s/small")
        let big = key("/s/big")
        let budget = sized(100).cost(for: big)
        let cache = ResponseCache(budgetBytes: budget)
        cache.put(small, sized(1))
        let before = cache.stats
        #expect(cache.put(big, sized(101)) == false)
        #expect(cache.get(big) == nil)
        #expect(cache.stats == before)
        #expect(cache.get(small) != nil)

        // Exactly the budget fits, evicting everything else.
        #expect(cache.put(big, sized(100)))
        #expect(cache.stats.bytes == budget)
        #expect(cache.stats.entries == 1)
        #expect(cache.get(small) == nil)

        // An oversize replacement drops the entry it meant to supersede.
        #expect(cache.put(big, sized(500)) == false)
        #expect(cache.get(big) == nil)
        #expect(cache.stats.bytes == 0)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func sieveSparesAVisitedEntryAndKeepsItsHandPosition() {
        let (a, b, c, d, e) = (key("/A"), key("/B"), key("/C"), key("/D"), key("/E"))
        let cache = ResponseCache(budgetBytes: 3 * sized(10).cost(for: a))
        cache.put(a, sized(10))
        cache.put(b, sized(10))
        cache.put(c, sized(10))
        #expect(cache.get(a) != nil)
        cache.put(d, sized(10))
        #expect(cache.stats.evictions == 1)
        #expect(cache.get(b) == nil, "B is the first unvisited entry the hand meets")
        // Peek without marking: contains-checks via stats and the next eviction.
        #expect(cache.stats.entries == 3)

        // The hand stays where it stopped (at C), it does not restart at the tail: C goes next, not A
        // (whose bit the first pass cleared).
        cache.put(e, sized(10))
        #expect(cache.stats.evictions == 2)
        #expect(cache.get(c) == nil)
        #expect(cache.get(a) != nil)
        #expect(cache.get(d) != nil)
        #expect(cache.get(e) != nil)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func withoutHitsEvictionIsFIFO() {
        let keys = (0..<5).map { key("/k\($0)") }
        let cache = ResponseCache(budgetBytes: 3 * sized(10).cost(for: keys[0]))
        for k in keys { cache.put(k, sized(10)) }
        let present = keys.map { cache.get($0) != nil }
        #expect(present == [false, false, true, true, true])
        #expect(cache.stats.evictions == 2)
    }

    @Test func aHotSetSurvivesAOnePassScanOfColdKeys() {
        // Equal key lengths, so every entry costs the same.
        let hot = (0..<4).map { key("/h/\(1_000 + $0)") }
        let cold = (0..<500).map { key("/c/\(1_000 + $0)") }
        let capacity = 10
        let cache = ResponseCache(budgetBytes: capacity * sized(10).cost(for: hot[0]))
        for k in hot { cache.put(k, sized(10)) }
        for (i, k) in cold.enumerated() {
            cache.put(k, sized(10))
            // The hot set is read only once per eight cold inserts: FIFO would lose it after six,
            // LRU would lose half of it after eight, SIEVE keeps it.
            if i % 8 == 0 {
                for h in hot { #expect(cache.get(h) != nil, "hot key \(h) evicted at scan step \(i)") }
            }
        }
        for h in hot { #expect(cache.get(h) != nil) }
        #expect(cache.stats.entries == capacity)
        #expect(cache.stats.evictions == cold.count - (capacity - hot.count))
        let survivingCold = cold.filter { cache.get($0) != nil }.count
        #expect(survivingCold == capacity - hot.count)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func purgeRemovesEveryVariantAndCredentialOfOneStreamOnly() {
        let cache = ResponseCache(budgetBytes: 100_000)
        let target = [
            key("/v1/stream/a"),
            key("/v1/stream/a", "offset=5"),
            key("/v1/stream/a", "live=long-poll&offset=5&cursor=9"),
            key("/v1/stream/a", credentials: "u1"),
            key("/v1/stream/a", "offset=5", credentials: "u2"),
        ]
        let others = [
            key("/v1/stream/b"),
            key("/v1/stream/b", credentials: "u1"),
            key("/v1/stream/a2"),  // a prefix match is not the same stream
            key("/v1/stream", "offset=5"),
        ]
        for k in target + others { cache.put(k, sized(50)) }
        let keptBytes = others.reduce(0) { $0 + sized(50).cost(for: $1) }

        #expect(cache.purge(stream: "/v1/stream/a") == target.count)
        for k in target { #expect(cache.get(k) == nil) }
        for k in others { #expect(cache.get(k) != nil) }
        #expect(cache.stats.bytes == keptBytes)
        #expect(cache.stats.entries == others.count)
        #expect(cache.stats.evictions == 0)
        #expect(cache.purge(stream: "/v1/stream/a") == 0)
        #expect(cache.purge(stream: "/nope") == 0)
        #expect(cache.invariantViolation() == nil)

        // The stream can be cached again after the purge.
        cache.put(target[0], sized(1))
        #expect(cache.get(target[0]) != nil)
        #expect(cache.purge(stream: "/v1/stream/a") == 1)
    }

    @Test func purgeUnderTheHandLeavesEvictionWorking() {
        let keys = (0..<3).map { key("/p\($0)") }
        let cache = ResponseCache(budgetBytes: 3 * sized(10).cost(for: keys[0]))
        for k in keys { cache.put(k, sized(10)) }
        _ = cache.get(keys[0])
        cache.put(key("/p3"), sized(10))  // evicts p1, the hand rests on p2
        #expect(cache.purge(stream: "/p2") == 1)
        #expect(cache.invariantViolation() == nil)
        for i in 4..<10 {
            cache.put(key("/p\(i)"), sized(10))
            #expect(cache.invariantViolation() == nil)
            #expect(cache.stats.entries <= 3)
        }
        #expect(cache.get(key("/p9")) != nil)
    }

    @Test func refreshChangesFreshnessButKeepsTheBody() {
        let cache = ResponseCache(budgetBytes: 10_000)
        let k = key("/s/tail", "offset=7")
        cache.put(k, response("tail-bytes", freshUntil: at(2_000), staleUntil: at(3_000), storedAt: at(1_000)))
        let bytes = cache.stats.bytes
        #expect(cache.get(k)?.freshness(at: at(2_500)) == .stale)

        cache.refresh(k, storedAt: at(2_500), freshUntil: at(4_000), staleUntil: nil)
        let refreshed = cache.get(k)
        #expect(refreshed?.freshness(at: at(2_500)) == .fresh)
        #expect(refreshed?.freshness(at: at(4_000)) == .expired)
        #expect(refreshed?.storedAt == at(2_500))
        #expect(refreshed?.freshUntil == at(4_000))
        #expect(refreshed?.staleUntil == nil)
        #expect(refreshed?.body == ByteBuffer(string: "tail-bytes"))
        #expect(refreshed?.etag == "\"e1\"")
        #expect(cache.stats.bytes == bytes)

        // Refreshing an absent key stores nothing.
        cache.refresh(key("/s/none"), storedAt: at(0), freshUntil: nil, staleUntil: nil)
        #expect(cache.get(key("/s/none")) == nil)
        #expect(cache.stats.entries == 1)
    }

    @Test func freshnessAtTheBoundaries() {
        let windowed = response("x", freshUntil: at(100), staleUntil: at(200))
        #expect(windowed.freshness(at: at(0)) == .fresh)
        #expect(windowed.freshness(at: at(99)) == .fresh)
        #expect(windowed.freshness(at: at(100)) == .stale)
        #expect(windowed.freshness(at: at(199)) == .stale)
        #expect(windowed.freshness(at: at(200)) == .expired)
        #expect(windowed.freshness(at: at(10_000)) == .expired)

        let noWindow = response("x", freshUntil: at(100), staleUntil: nil)
        #expect(noWindow.freshness(at: at(99)) == .fresh)
        #expect(noWindow.freshness(at: at(100)) == .expired)

        // A stale window that ends before freshness does leaves no stale phase.
        let inverted = response("x", freshUntil: at(100), staleUntil: at(50))
        #expect(inverted.freshness(at: at(99)) == .fresh)
        #expect(inverted.freshness(at: at(100)) == .expired)

        let immutable = response("x", freshUntil: nil, staleUntil: nil)
        #expect(immutable.freshness(at: at(0)) == .fresh)
        #expect(immutable.freshness(at: .distantFuture) == .fresh)
    }

    @Test func theEvictionCounterCountsOnlyEvictions() {
        let keys = (0..<6).map { key("/e\($0)") }
        let cache = ResponseCache(budgetBytes: 2 * sized(10).cost(for: keys[0]))
        for k in keys.prefix(5) { cache.put(k, sized(10)) }
        #expect(cache.stats.evictions == 3)
        cache.put(keys[4], sized(10))  // replacement
        cache.remove(keys[4])
        cache.purge(stream: keys[3].stream)
        #expect(cache.stats.entries == 0)
        #expect(cache.stats.evictions == 3)
        cache.put(keys[0], sized(10))
        cache.put(keys[1], sized(10))
        cache.put(keys[2], sized(10))
        #expect(cache.stats.evictions == 4)
        #expect(cache.stats.bytes == 2 * sized(10).cost(for: keys[0]))
    }
}

@Suite("ResponseCache under concurrent use")
struct ResponseCacheConcurrencyTests {
    @Test func concurrentWritersAndReadersLeaveAConsistentCache() async {
        let budget = 16 * 1024
        let cache = ResponseCache(budgetBytes: budget)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var rng = SeededGenerator(state: UInt64(worker))
                    for _ in 0..<2_000 {
                        let k = key("/s/\(Int.random(in: 0..<20, using: &rng))", "offset=\(Int.random(in: 0..<10, using: &rng))")
                        switch Int.random(in: 0..<10, using: &rng) {
                        case 0..<5: cache.put(k, sized(Int.random(in: 0...1_000, using: &rng)))
                        case 5..<9: _ = cache.get(k)
                        default: cache.purge(stream: k.stream)
                        }
                    }
                }
            }
        }
        #expect(cache.invariantViolation() == nil)
        #expect(cache.stats.bytes <= budget)
        #expect(cache.stats.evictions > 0)
    }
}
