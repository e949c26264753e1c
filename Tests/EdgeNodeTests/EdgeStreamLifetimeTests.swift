import EdgeNode
import Foundation
import NIOPosix
import NIOConcurrencyHelpers
import OriginServer
import StreamStore
import TestSupport
import Testing

/// A wall clock both servers read, moved by hand: stream expiry without waiting.
final class SharedWallClock: Sendable {
    private let value = NIOLockedValueBox<Double>(1_800_000_000)
    var read: @Sendable () -> Double { { [value] in value.withLockedValue { $0 } } }
    func advance(_ seconds: Double) { value.withLockedValue { $0 += seconds } }
}

/// A cached answer never outlives its stream, and a sliding TTL is kept alive by the edge for
/// the readers it serves from its cache.
@Suite("Edge: stream lifetimes")
struct EdgeStreamLifetimeTests {
    @Test func aCachedReadIsNotServedAfterItsStreamExpired() async throws {
        let clock = SharedWallClock()
        try await withEdges(store: MemoryStore(clock: clock.read), edge: { $0.wallClock = clock.read }) { edges in
            let created = try await edges.request(.PUT, "/v1/stream/brief", headers: [("Content-Type", "text/plain"), ("Stream-TTL", "100")], body: "hello")
            #expect(created.status == 201)
            #expect(try await edges.request(.GET, "/v1/stream/brief?offset=-1").header("X-Cache") == "MISS")
            let hit = try await edges.request(.GET, "/v1/stream/brief?offset=-1")
            #expect(hit.header("X-Cache") == "HIT")
            #expect(hit.header("Stream-TTL") == "100")
            // Nobody reads for longer than the TTL: the origin has let the stream go, and the
            // edge, whose entry is still fresh by its max-age, must not answer for it.
            clock.advance(101)
            let after = try await edges.request(.GET, "/v1/stream/brief?offset=-1")
            #expect(after.status == 404)
        }
    }

    @Test func readsServedFromTheCacheKeepASlidingTTLAlive() async throws {
        let clock = SharedWallClock()
        let store = MemoryStore(clock: clock.read)
        try await withEdges(store: store, edge: { $0.wallClock = clock.read }) { edges in
            let start = clock.read()
            _ = try await edges.request(.PUT, "/v1/stream/kept", headers: [("Content-Type", "text/plain"), ("Stream-TTL", "100")], body: "hello")
            #expect(try await edges.request(.GET, "/v1/stream/kept?offset=-1").header("X-Cache") == "MISS")
            // Half the TTL on, a read from the cache sends one renewal upstream.
            clock.advance(60)
            #expect(try await edges.request(.GET, "/v1/stream/kept?offset=-1").header("X-Cache") == "HIT")
            try await eventually {
                (try? await store.info("kept", on: MultiThreadedEventLoopGroup.singleton.next()).get().expiresAt) == start + 160
            }
            // Past the first expiry: still served, and still there at the origin.
            clock.advance(50)
            let later = try await edges.request(.GET, "/v1/stream/kept?offset=-1")
            #expect(later.status == 200)
            #expect(try await edges.originRequest(.HEAD, "/v1/stream/kept").status == 200)
        }
    }

    @Test func aStreamWithAFixedExpiryIsNotServedPastIt() async throws {
        let clock = SharedWallClock()
        try await withEdges(store: MemoryStore(clock: clock.read), edge: { $0.wallClock = clock.read }) { edges in
            let instant = Date(timeIntervalSince1970: clock.read() + 30)
            let formatter = ISO8601DateFormatter()
            _ = try await edges.request(.PUT, "/v1/stream/dated",
                                        headers: [("Content-Type", "text/plain"), ("Stream-Expires-At", formatter.string(from: instant))], body: "x")
            #expect(try await edges.request(.GET, "/v1/stream/dated?offset=-1").status == 200)
            #expect(try await edges.request(.GET, "/v1/stream/dated?offset=-1").header("X-Cache") == "HIT")
            clock.advance(31)
            #expect(try await edges.request(.GET, "/v1/stream/dated?offset=-1").status == 404)
        }
    }
}
