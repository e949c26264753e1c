import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: TTL and Expires-At with an injected clock")
struct ExpiryTests {
    @Test(arguments: StoreBackend.all) func aTTLStreamExpiresAfterItsWindowOfInactivity(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 10))
        h.clock.advance(by: 9.999)
        #expect(try h.info().closed == false)
        h.clock.advance(by: 0.001)
        #expect(h.infoError()?.status == .notFound)
        #expect(h.readError()?.status == .notFound)
        #expect(h.appendError("x")?.status == .notFound)
        #expect(h.deleteError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func infoReportsTheExpiryInstant(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let start = h.clock.now
        let created = try h.create(lifetime: .ttl(seconds: 10))
        #expect(created.info.expiresAt == start + 10)
        #expect(try h.info().expiresAt == start + 10)
    }

    @Test(arguments: StoreBackend.all) func aTouchingReadRenewsTheTTL(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let start = h.clock.now
        try h.create(lifetime: .ttl(seconds: 10), body: "x")
        h.clock.advance(by: 9)
        let read = try h.read(touch: true)
        #expect(read.info.expiresAt == start + 19)
        h.clock.advance(by: 9)  // 18 s after creation, 9 s after the read
        #expect(try h.info().expiresAt == start + 19)
        h.clock.advance(by: 1)  // 19 s
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func aReadWithoutTouchDoesNotRenew(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 10), body: "x")
        h.clock.advance(by: 9)
        _ = try h.read(touch: false)
        h.clock.advance(by: 1)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func anAppendRenewsTheTTL(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let start = h.clock.now
        try h.create(lifetime: .ttl(seconds: 2))
        h.clock.advance(by: 1.5)
        try h.append("keep alive")
        h.clock.advance(by: 1.5)  // 3.0 s after creation, 1.5 s after the append
        #expect(try h.info().expiresAt == start + 3.5)
        h.clock.advance(by: 0.5)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func aCloseRenewsTheTTL(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 2))
        h.clock.advance(by: 1.5)
        try h.close()
        h.clock.advance(by: 1.5)
        #expect(try h.info().closed)
    }

    @Test(arguments: StoreBackend.all) func infoDoesNotRenewTheTTL(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 2))
        h.clock.advance(by: 1.5)
        #expect(try h.info().tail == .zero)
        h.clock.advance(by: 0.5)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func repeatedInfoPollingDoesNotKeepAStreamAlive(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 2))
        for _ in 0..<9 {
            h.clock.advance(by: 0.2)
            _ = try h.info()
        }
        h.clock.advance(by: 0.2)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func expiresAtIsAbsolute(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let instant = h.clock.now + 4
        try h.create(lifetime: .expiresAt(seconds: instant, text: "t"), body: "x")
        h.clock.advance(by: 2)
        _ = try h.read(touch: true)
        try h.append("y")
        #expect(try h.info().expiresAt == instant)
        h.clock.advance(by: 1.999)
        #expect(try h.text() == "xy")
        h.clock.advance(by: 0.001)
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func expiresAtInThePastIsABadRequest(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.createError(lifetime: .expiresAt(seconds: h.clock.now - 1, text: "past"))?.status == .badRequest)
        #expect(h.createError(lifetime: .expiresAt(seconds: h.clock.now, text: "now"))?.status == .badRequest)
        #expect(h.store.streamCount == 0)
    }

    @Test(arguments: StoreBackend.all) func expiresAtInThePastIsRejectedEvenForAnExistingPath(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let instant = h.clock.now + 10
        try h.create(lifetime: .expiresAt(seconds: instant, text: "t"))
        h.clock.advance(by: 20)
        #expect(h.createError(lifetime: .expiresAt(seconds: instant, text: "t"))?.status == .badRequest)
    }

    /// The sweep is part of the store protocol, so a server sweeps whichever store it has.
    @Test(arguments: StoreBackend.all) func sweepingThroughTheProtocolRemovesExpiredStreams(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 5))
        let store: any StreamStore = h.store
        #expect(try store.sweepExpired(on: h.loop).wait() == 0)
        h.clock.advance(by: 6)
        #expect(try store.sweepExpired(on: h.loop).wait() == 1)
        #expect(store.streamCount == 0)
    }

    @Test(arguments: StoreBackend.all) func unlimitedStreamsNeverExpire(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create()
        h.clock.advance(by: 10 * 365 * 24 * 3600)
        #expect(try h.info().expiresAt == nil)
        #expect(try h.sweep() == 0)
    }

    @Test(arguments: StoreBackend.all) func anExpiredPathCanBeRecreatedWithADifferentConfiguration(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        let old = try h.create(type: "text/plain", lifetime: .ttl(seconds: 1), body: "old")
        h.clock.advance(by: 2)
        let new = try h.create(type: "application/json", lifetime: .ttl(seconds: 3600), body: "[\"new data\"]")
        #expect(new.created)
        #expect(new.info.id != old.info.id)
        #expect(try h.text() == "\"new data\",")
    }

    @Test(arguments: StoreBackend.all) func sweepRemovesOnlyExpiredStreams(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("short", lifetime: .ttl(seconds: 5))
        try h.create("long", lifetime: .ttl(seconds: 50))
        try h.create("absolute", lifetime: .expiresAt(seconds: h.clock.now + 5, text: "t"))
        try h.create("forever")
        #expect(try h.sweep() == 0)
        #expect(h.store.streamCount == 4)
        h.clock.advance(by: 5)
        #expect(try h.sweep() == 2)
        #expect(h.store.streamCount == 2)
        #expect(h.infoError("short")?.status == .notFound)
        #expect(h.infoError("absolute")?.status == .notFound)
        #expect(try h.info("long").tail == .zero)
        #expect(try h.info("forever").tail == .zero)
        #expect(try h.sweep() == 0)
    }

    @Test(arguments: StoreBackend.all) func sweepRespectsRenewals(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", lifetime: .ttl(seconds: 10))
        try h.create("b", lifetime: .ttl(seconds: 10))
        h.clock.advance(by: 8)
        try h.append("a", "x")
        h.clock.advance(by: 3)
        #expect(try h.sweep() == 1)
        #expect(try h.text("a") == "x")
    }

    @Test(arguments: StoreBackend.all) func expiredStreamsAreRemovedLazilyOnAccess(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(lifetime: .ttl(seconds: 1))
        h.clock.advance(by: 1)
        #expect(h.store.streamCount == 1)
        #expect(h.infoError()?.status == .notFound)
        #expect(h.store.streamCount == 0)
    }
}
