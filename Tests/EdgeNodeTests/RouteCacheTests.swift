@testable import EdgeNode
import NIOCore
import NIOHTTP1
import Testing

/// The rule for keeping `[[route]]` answers (`RouteCachePolicy`) and the bounded store that
/// keeps them (`RouteCache`), without a server.
@Suite("Route cache")
struct RouteCacheTests {
    private func get(_ uri: String, _ headers: [(String, String)] = [], method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("Host", "edge.example")] + headers))
    }

    @Test func theKeyIsMethodHostTargetAndEncoding() {
        let plain = RouteCachePolicy.key(for: get("/api/a?x=1"), bodyBytes: 0)
        #expect(plain == "GET\nedge.example\n/api/a?x=1\n")
        #expect(RouteCachePolicy.key(for: get("/api/a?x=2"), bodyBytes: 0) != plain)
        #expect(RouteCachePolicy.key(for: get("/api/a?x=1", [("Accept-Encoding", "gzip")]), bodyBytes: 0) != plain)
        let other = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/a?x=1", headers: ["Host": "other.example"])
        #expect(RouteCachePolicy.key(for: other, bodyBytes: 0) != plain)
    }

    @Test(arguments: [
        [("Authorization", "Bearer x")], [("Cookie", "a=1")], [("Range", "bytes=0-1")], [("Cache-Control", "no-cache")],
        [("Cache-Control", "max-age=0, no-store")], [("Pragma", "no-cache")], [("Host", "second.example")],
    ])
    func personalOrUnusualRequestsPass(headers: [(String, String)]) {
        #expect(RouteCachePolicy.key(for: get("/api/a", headers), bodyBytes: 0) == nil)
    }

    @Test func onlyBodilessGetsAreCached() {
        #expect(RouteCachePolicy.key(for: get("/api/a"), bodyBytes: 1) == nil)
        for method in [HTTPMethod.HEAD, .POST, .PUT, .DELETE, .OPTIONS] {
            #expect(RouteCachePolicy.key(for: get("/api/a", method: method), bodyBytes: 0) == nil)
        }
    }

    @Test(arguments: [
        ("public, max-age=60", Int64(60)), ("max-age=60, public", 60), ("PUBLIC, Max-Age=\"30\"", 30),
        ("public, max-age=60, s-maxage=5", 5), ("public, s-maxage=90", 90), ("public, max-age=99999999999999999999", 365 * 24 * 3600),
    ] as [(String, Int64)])
    func publicAnswersWithALifetimeAreKept(control: String, seconds: Int64) {
        #expect(RouteCachePolicy.lifetime(status: .ok, headers: ["Cache-Control": control]) == .seconds(seconds))
    }

    @Test(arguments: [
        [("Cache-Control", "max-age=60")], [("Cache-Control", "public")], [("Cache-Control", "public, max-age=0")],
        [("Cache-Control", "public, max-age=60, private")], [("Cache-Control", "public, max-age=60, no-cache")],
        [("Cache-Control", "public, max-age=60, no-store")], [("Cache-Control", "public, max-age=60, s-maxage=0")],
        [("Cache-Control", "public, max-age=-1")], [("Cache-Control", "public, max-age=1x")],
        [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "a=1")],
        [("Cache-Control", "public, max-age=60"), ("Vary", "*")],
        [("Cache-Control", "public, max-age=60"), ("Vary", "Accept-Encoding"), ("Vary", "User-Agent")],
        [],
    ])
    func otherAnswersAreNot(headers: [(String, String)]) {
        #expect(RouteCachePolicy.lifetime(status: .ok, headers: HTTPHeaders(headers)) == nil)
    }

    @Test func onlyA200IsKept() {
        let headers: HTTPHeaders = ["Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding"]
        #expect(RouteCachePolicy.lifetime(status: .ok, headers: headers) == .seconds(60))
        for status in [HTTPResponseStatus.partialContent, .notModified, .notFound, .movedPermanently, .internalServerError] {
            #expect(RouteCachePolicy.lifetime(status: status, headers: headers) == nil)
        }
    }

    // MARK: The store

    private func entry(_ body: Int, until: NIODeadline) -> CachedResponse {
        CachedResponse(
            status: .ok, headers: ["Content-Length": String(body)], body: ByteBuffer(repeating: 0x61, count: body),
            storedAt: until - .seconds(60), freshUntil: until, staleUntil: nil, etag: nil)
    }

    @Test func entriesExpire() {
        let now = NIODeadline.now()
        let cache = RouteCache(budgetBytes: 1 << 20)
        cache.put("a", entry(10, until: now + .seconds(1)))
        #expect(cache.get("a", now: now) != nil)
        #expect(cache.get("a", now: now + .seconds(1)) == nil)
        // Dropped, not just hidden.
        #expect(cache.stats.entries == 0 && cache.stats.bytes == 0)
    }

    @Test func theBudgetHoldsAndTheOldestGoFirst() {
        let now = NIODeadline.now()
        let until = now + .seconds(60)
        // Keys of one length, so every entry costs the same.
        let one = RouteCache.cost("k100", entry(1000, until: until))
        let cache = RouteCache(budgetBytes: one * 8)
        for index in 100..<120 {
            #expect(cache.put("k\(index)", entry(1000, until: until)))
            #expect(cache.stats.bytes <= cache.budgetBytes)
        }
        #expect(cache.stats.entries == 8)
        #expect(cache.stats.evictions == 12)
        #expect(cache.get("k111", now: now) == nil)
        #expect(cache.get("k112", now: now) != nil)
        #expect(cache.get("k119", now: now) != nil)
    }

    @Test func replacingAKeyKeepsTheAccountsAndTheQueueBounded() {
        let now = NIODeadline.now()
        let until = now + .seconds(60)
        let one = RouteCache.cost("kk", entry(100, until: until))
        let cache = RouteCache(budgetBytes: one * 4)
        for _ in 0..<10_000 { cache.put("kk", entry(100, until: until)) }
        #expect(cache.stats.entries == 1 && cache.stats.bytes == one && cache.stats.evictions == 0)
        // The stale queue items of the replaced entries never count as evictions of live ones.
        for index in 0..<3 { cache.put("o\(index)", entry(100, until: until)) }
        #expect(cache.stats.entries == 4 && cache.stats.evictions == 0)
        cache.put("o3", entry(100, until: until))
        #expect(cache.stats.entries == 4 && cache.stats.evictions == 1)
        #expect(cache.get("kk", now: now) == nil)
    }

    @Test func anEntryOverAQuarterOfTheBudgetIsNotKept() {
        let until = NIODeadline.now() + .seconds(60)
        let cache = RouteCache(budgetBytes: 4000)
        #expect(!cache.put("big", entry(1001, until: until)))
        #expect(cache.put("small", entry(500, until: until)))
        #expect(!RouteCache(budgetBytes: 0).isEnabled)
    }
}
