import DurableStreams
import Testing
@testable import StreamStore

/// The bound on fork chains: a read walks the whole chain, so its depth must be limited.
@Suite("Fork chain depth")
struct ForkDepthTests {
    @Test(arguments: StoreBackend.all)
    func aChainStopsAtItsMaximumDepthAndStillReads(_ backend: StoreBackend) throws {
        let harness = try StoreHarness(backend)
        try harness.create("f0", body: "x")
        for level in 1...ForkLayers.maxDepth {
            let command = CreateCommand(
                contentType: nil, lifetime: .unlimited, closed: false, body: .empty,
                fork: ForkCommand(source: "f\(level - 1)", offset: nil, subOffset: 0))
            _ = try harness.store.create("f\(level)", command, on: harness.loop).wait()
        }
        let deepest = "f\(ForkLayers.maxDepth)"
        let command = CreateCommand(
            contentType: nil, lifetime: .unlimited, closed: false, body: .empty,
            fork: ForkCommand(source: deepest, offset: nil, subOffset: 0))
        #expect(throws: ForkLayers.tooDeep) { try harness.store.create("too-deep", command, on: harness.loop).wait() }
        // The deepest fork still reads the root's byte through every level.
        let read = try harness.store.read(deepest, from: .beginning, maxBytes: 1024, touch: false, on: harness.loop).wait()
        #expect(read.body.map { String(buffer: $0) }.joined() == "x")
    }

    @Test func depthCountsSourcesUpTheChain() {
        let chain: [Int: Int] = [3: 2, 2: 1, 1: 0]
        #expect(ForkLayers.depth(of: 3, source: { chain[$0] }) == 3)
        #expect(ForkLayers.depth(of: 0, source: { chain[$0] }) == 0)
    }
}
