import DurableStreams
import NIOCore
import Testing
@testable import StreamStore

@Suite("Store contract: delete")
struct DeleteStreamTests {
    @Test(arguments: StoreBackend.all) func deleteRemovesTheStream(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(body: "abc")
        #expect(h.store.streamCount == 1)
        try h.delete()
        #expect(h.store.streamCount == 0)
        #expect(h.readError()?.status == .notFound)
        #expect(h.infoError()?.status == .notFound)
        #expect(h.appendError("x")?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func deletingAMissingStreamIsNotFound(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        #expect(h.deleteError("missing")?.status == .notFound)
        try h.create()
        try h.delete()
        #expect(h.deleteError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func aClosedStreamCanBeDeleted(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create(closed: true)
        try h.delete()
        #expect(h.infoError()?.status == .notFound)
    }

    @Test(arguments: StoreBackend.all) func deleteLeavesOtherStreamsAlone(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("a", body: "A")
        try h.create("b", body: "B")
        try h.delete("a")
        #expect(try h.text("b") == "B")
        #expect(h.store.streamCount == 1)
    }

    @Test(arguments: StoreBackend.all) func pathsArePlainKeys(_ backend: StoreBackend) throws {
        let h = try StoreHarness(backend)
        try h.create("events/sync-1", body: "x")
        #expect(h.infoError("events")?.status == .notFound)
        #expect(h.infoError("events/sync-1/")?.status == .notFound)
        #expect(try h.text("events/sync-1") == "x")
    }
}
