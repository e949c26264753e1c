import EdgeNode
import NIOCore
import NIOPosix
import OriginServer
import Testing

@testable import LoadTest

/// Each scenario for a few seconds against a real origin, directly and through an edge: every
/// reader must get every message exactly once, in order, and the figures must add up.
@Suite("Load test end to end", .serialized)
struct LoadTestEndToEndTests {
    /// A small, quick version of a built-in scenario.
    private func small(_ kind: Scenario.Kind) -> Scenario {
        var scenario = Scenario(name: "e2e-\(kind.rawValue)", kind: kind)
        scenario.streams = 2
        scenario.readersPerStream = 10
        scenario.appendsPerSecond = 20
        scenario.duration = .seconds(2)
        // Generous: a loaded CI machine is slow, not broken; the run ends as soon as all arrived.
        scenario.drain = .seconds(30)
        scenario.streamBytes = 64 << 10
        scenario.minimumLifetime = .milliseconds(300)
        scenario.maximumLifetime = .milliseconds(900)
        return scenario
    }

    private func withServers<T>(_ body: (_ origin: Target, _ edge: Target) async throws -> T) async throws -> T {
        var originConfiguration = OriginConfiguration()
        originConfiguration.port = 0
        originConfiguration.sseReconnectInterval = .seconds(1)  // readers must survive reconnects
        let origin = OriginServer(configuration: originConfiguration, group: MultiThreadedEventLoopGroup.singleton)
        try await origin.start()
        var edgeConfiguration = EdgeConfiguration()
        edgeConfiguration.port = 0
        edgeConfiguration.upstreamPort = origin.port!
        edgeConfiguration.upstreamTimeout = .seconds(60)
        edgeConfiguration.sseReconnectInterval = .seconds(1)
        let edge = EdgeServer(configuration: edgeConfiguration, group: MultiThreadedEventLoopGroup.singleton)
        try await edge.start()
        defer {
            Task {
                try? await edge.shutdown()
                try? await origin.shutdown()
            }
        }
        return try await body(Target(host: "127.0.0.1", port: origin.port!), Target(host: "127.0.0.1", port: edge.port!))
    }

    private func run(_ scenario: Scenario, target: Target, origin: Target) async throws -> LoadTestResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            let result = try await LoadTestRunner(options: LoadTestOptions(scenario: scenario, target: target, origin: origin), group: group).run()
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func expectClean(_ result: LoadTestResult, _ comment: Comment) {
        #expect(result.delivery.lost == 0, comment)
        #expect(result.delivery.duplicated == 0, comment)
        #expect(result.delivery.outOfOrder == 0, comment)
        #expect(result.delivery.corrupt == 0, comment)
        #expect(result.delivery.expected > 0, comment)
        #expect(result.delivery.received >= result.delivery.expected, comment)
        // SSE responses end every second here and say `Connection: close`: reconnecting is no error.
        #expect(result.errors.total == 0, comment)
        #expect(result.originRequests != nil, comment)
    }

    @Test(arguments: [Scenario.Kind.live, .sse])
    func liveReadersGetEveryMessageDirectAndThroughAnEdge(kind: Scenario.Kind) async throws {
        try await withServers { origin, edge in
            let scenario = small(kind)
            let direct = try await run(scenario, target: origin, origin: origin)
            expectClean(direct, "direct \(kind)")
            // Every reader owes every acknowledged append.
            #expect(direct.delivery.expected == direct.delivery.appended * scenario.readersPerStream)
            #expect(direct.latency.count == direct.delivery.received)
            #expect(direct.edges.isEmpty)
            if let ratio = direct.collapseRatio { #expect(ratio >= 0.99 && ratio < 1.5) }
            if kind == .sse {
                // The origin ends SSE responses every second: readers came back for more.
                #expect((direct.readerRequests["sse"] ?? 0) > scenario.totalReaders)
            }

            let viaEdge = try await run(scenario, target: edge, origin: origin)
            expectClean(viaEdge, "edge \(kind)")
            #expect(viaEdge.delivery.expected == viaEdge.delivery.appended * scenario.readersPerStream)
            // Ten readers per stream share upstream requests.
            #expect((viaEdge.collapseRatio ?? 0) > 2)
            #expect(viaEdge.edges.count == 1)
            #expect((viaEdge.edges.first?.hitRate ?? 0) > 0)
            #expect(!viaEdge.timeline.isEmpty)
        }
    }

    @Test func latencyTimedFromTheSendNeverStartsAfterTheDelivery() async throws {
        try await withServers { origin, _ in
            // Straight at the origin, which answers an append before it wakes the long-polls:
            // timed from the acknowledgement, many deliveries would count as 0 ("before ack").
            var scenario = small(.live)
            scenario.latencyFrom = .send
            let result = try await run(scenario, target: origin, origin: origin)
            expectClean(result, "live, latency from the send")
            #expect(result.latencyKind == "delivery-from-send")
            #expect(result.delivery.beforeAck == 0)
            #expect(result.latency.count == result.delivery.received)
            #expect(result.latency.p50 > 0)
        }
    }

    @Test func catchUpReadersReadWholeStreamsAndTheEdgeCachesThem() async throws {
        try await withServers { origin, edge in
            let scenario = small(.catchup)
            let result = try await run(scenario, target: edge, origin: origin)
            expectClean(result, "catch-up")
            #expect(result.latencyKind == "request")
            #expect(result.delivery.expected % (scenario.streamBytes / scenario.messageBytes) == 0)
            #expect((result.readerRequests["catch_up"] ?? 0) > 20)
            #expect((result.collapseRatio ?? 0) > 2)
        }
    }

    @Test func readersJoiningAndLeavingMissNothingTheyAreOwed() async throws {
        try await withServers { origin, edge in
            var scenario = small(.mixed)
            scenario.writersPerStream = 2
            let result = try await run(scenario, target: edge, origin: origin)
            expectClean(result, "mixed")
            // Readers left and others took their places.
            #expect(result.delivery.readers > scenario.totalReaders)
        }
    }
}
