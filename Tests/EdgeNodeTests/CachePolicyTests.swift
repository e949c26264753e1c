import EdgeNode
import NIOCore
import NIOHTTP1
import Testing

@Suite("CachePolicy: what the edge keeps")
struct CachePolicyTests {
    func decide(_ status: HTTPResponseStatus, _ headers: HTTPHeaders, credentialed: Bool = false) -> CacheDecision {
        CachePolicy.decide(status: status, headers: headers, credentialed: credentialed, defaultStale: .seconds(300))
    }

    @Test func fullChunkIsImmutableWhateverMaxAge() {
        #expect(decide(.ok, ["Cache-Control": "public, max-age=1", "Stream-Next-Offset": "x"]) == .immutable)
    }

    @Test func endOfClosedStreamIsImmutable() {
        #expect(decide(.ok, ["Stream-Up-To-Date": "true", "Stream-Closed": "true", "Cache-Control": "public, max-age=60"]) == .immutable)
        #expect(decide(.noContent, ["Stream-Up-To-Date": "true", "Stream-Closed": "true"]) == .immutable)
    }

    @Test func tailAnswerExpiresWithMaxAgeAndStaleWindow() {
        #expect(decide(.ok, ["Stream-Up-To-Date": "true", "Cache-Control": "public, max-age=60, stale-while-revalidate=300"])
            == .expiring(fresh: .seconds(60), stale: .seconds(300)))
        #expect(decide(.ok, ["Stream-Up-To-Date": "true", "Cache-Control": "public, max-age=5"])
            == .expiring(fresh: .seconds(5), stale: .seconds(300)))
        #expect(decide(.ok, ["Stream-Up-To-Date": "true"]) == .expiring(fresh: .zero, stale: .seconds(300)))
    }

    /// A huge or negative directive must neither trap (TimeAmount counts nanoseconds in an
    /// Int64) nor keep an entry for centuries.
    @Test(arguments: ["max-age=9223372036854775807", "max-age=99999999999", "max-age=-5, stale-while-revalidate=99999999999999"])
    func hugeLifetimesAreClampedNotTrapped(control: String) {
        let decision = decide(.ok, ["Stream-Up-To-Date": "true", "Cache-Control": control])
        guard case .expiring(let fresh, let stale) = decision else {
            Issue.record("expected an expiring entry, got \(decision)")
            return
        }
        let ceiling = TimeAmount.seconds(Int64(CachePolicy.maxLifetimeSeconds))
        #expect(fresh >= .zero && fresh <= ceiling)
        #expect(stale >= .zero && stale <= ceiling)
    }

    @Test func neverCached() {
        #expect(decide(.noContent, ["Stream-Up-To-Date": "true", "Stream-Cursor": "5"]) == .doNotStore)
        #expect(decide(.notFound, [:]) == .doNotStore)
        #expect(decide(.badRequest, [:]) == .doNotStore)
        #expect(decide(.internalServerError, [:]) == .doNotStore)
        #expect(decide(.ok, ["Cache-Control": "no-store"]) == .doNotStore)
    }

    @Test func privateAnswersOnlyWhenPartitionedByCredentials() {
        #expect(decide(.ok, ["Cache-Control": "private, max-age=60"]) == .doNotStore)
        #expect(decide(.ok, ["Cache-Control": "private, max-age=60"], credentialed: true) == .immutable)
    }

    @Test func emptyDirectivesAreSkipped() {
        #expect(CacheControl(" , ,private,, ").isPrivate)
    }

    @Test func parsesCacheControl() {
        let control = CacheControl("Public, MAX-AGE=30 , stale-while-revalidate=\"10\", stale-if-error=99, no-cache")
        #expect(control.maxAge == 30)
        #expect(control.staleWhileRevalidate == 10)
        #expect(control.staleIfError == 99)
        #expect(control.noCache)
        #expect(!control.noStore)
        #expect(CacheControl(nil) == CacheControl(""))
    }
}
