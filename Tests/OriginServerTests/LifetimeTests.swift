import NIOCore
import OriginServer
import StreamStore
import Testing

/// Origin only: expiry is driven by a hand-moved store clock, while a cache in front rightly
/// keeps answers for their max-age.
@Suite("TTL and Expires-At (§5.1)", .disabled(if: Topology.throughEdge, "origin clock tests"))
struct LifetimeTests {
    @Test func ttlExpiresWithoutAccessAndReadsRenewIt() async throws {
        let clock = ManualClock()
        try await withOrigin(clock: clock.read) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "x", headers: [("Stream-TTL", "2")])
            clock.advance(1.5)
            #expect(try await origin.request(.GET, path).status == 200)  // renews
            clock.advance(1.5)
            #expect(try await origin.request(.HEAD, path).status == 200)  // does not renew
            clock.advance(0.6)
            #expect(try await origin.request(.HEAD, path).status == 404)
            #expect(try await origin.request(.GET, path).status == 404)
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")], text: "y").status == 404)
        }
    }

    @Test func appendsRenewTTL() async throws {
        let clock = ManualClock()
        try await withOrigin(clock: clock.read) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, headers: [("Stream-TTL", "2")])
            for _ in 0..<5 {
                clock.advance(1.5)
                try await origin.append(path, "x")
            }
            #expect(try await origin.request(.HEAD, path).status == 200)
        }
    }

    @Test func expiresAtIsAbsolute() async throws {
        let clock = ManualClock()
        try await withOrigin(clock: clock.read) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            // ManualClock starts at 1_800_000_000 = 2027-01-15T08:00:00Z.
            try await origin.create(path, headers: [("Stream-Expires-At", "2027-01-15T08:00:04Z")])
            clock.advance(2)
            #expect(try await origin.request(.GET, path).status == 200)
            clock.advance(2.5)
            #expect(try await origin.request(.GET, path).status == 404)
        }
    }

    @Test func expiredPathCanBeRecreated() async throws {
        let clock = ManualClock()
        try await withOrigin(clock: clock.read) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, headers: [("Stream-TTL", "1")])
            clock.advance(5)
            try await origin.create(path, type: "application/json", body: #"["new data"]"#, headers: [("Stream-TTL", "3600")])
            #expect(try await origin.request(.GET, path).text == #"["new data"]"#)
        }
    }
}
