import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Edge: SSE fan-out")
struct EdgeSSEFanoutTests {
    /// Reads events until `count` data events have arrived; returns their payloads.
    func data(from reader: SSEReader, count: Int) async -> [String] {
        var payloads: [String] = []
        while payloads.count < count, let event = await reader.next() {
            if event.event == "data" { payloads.append(event.data) }
        }
        return payloads
    }

    /// 1,000 SSE clients of one stream share one upstream subscription, and each sees every
    /// event exactly once, in order.
    @Test func thousandClientsShareOneUpstreamSubscription() async throws {
        raiseFileLimit()
        // Both ends keep the responses open longer than the test takes on a loaded machine:
        // a reader ended by its reconnect interval would miss what follows.
        try await withEdges(origin: { $0.sseReconnectInterval = .seconds(600) }, edge: { $0.sseReconnectInterval = .seconds(600) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")])
            var readers: [SSEReader] = []
            for _ in 0..<1_000 {
                readers.append(try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse"))
            }
            // Every reader has had its first control event: it is caught up and attached.
            for reader in readers { _ = await reader.next() }
            try await eventually { edges.edge.metrics.registry.emitToString().contains(#"ds_edge_requests_total{class="sse",cache="COLLAPSED"} 999"#) }
            let messages = (0..<20).map { "m\($0)" }
            for message in messages {
                _ = try await edges.originRequest(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: message)
            }
            var perfect = 0
            for reader in readers {
                if await data(from: reader, count: messages.count) == messages { perfect += 1 }
            }
            for reader in readers { await reader.close() }
            #expect(perfect == 1_000)
            #expect(edges.originRequests("sse") == 1)
        }
    }

    /// §10.1: within one SSE response a cursor never goes back. A client whose cursor is ahead
    /// of the current interval gets a cursor beyond it from the edge's catch-up; the shared
    /// upstream subscription was asked without that cursor, so its control events carry a lower
    /// one, which must not reach this client as it is. Catch-up in several batches (a jitter
    /// drawn for each) must not go back either.
    @Test func cursorsNeverGoBackWithinOneResponse() async throws {
        try await withEdges(origin: { $0.maxChunkBytes = 2 }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "abcdefgh")
            let ahead = CursorPolicy().interval(at: Date().timeIntervalSince1970) + 1_000
            let reader = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse&cursor=\(ahead)")
            var cursors: [UInt64] = []
            var data = ""
            func readUntil(_ text: String) async {
                while !data.hasSuffix(text), let event = await reader.next() {
                    if event.event == "data" { data += event.data }
                    if event.event == "control", let range = event.data.range(of: #""streamCursor":""#) {
                        let digits = event.data[range.upperBound...].prefix { $0.isNumber }
                        cursors.append(UInt64(digits)!)
                    }
                }
            }
            await readUntil("gh")
            // Then a control event of its own once caught up, and the live batches.
            for message in ["1", "2", "3"] {
                _ = try await edges.originRequest(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: message)
                await readUntil(message)
            }
            _ = await reader.next()  // the last batch's control event
            await reader.close()
            #expect(cursors.count >= 5)
            #expect(cursors.allSatisfy { $0 > ahead }, "\(cursors)")
            #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0 <= $1 }, "\(cursors)")
        }
    }

    /// An SSE client is one request (class sse), however many catch-up reads the edge makes to
    /// bring it to the tail: counting those as catch_up requests would inflate the collapse ratio.
    @Test func anSSEClientCountsAsOneSSERequest() async throws {
        try await withEdges(origin: { $0.maxChunkBytes = 2 }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "abcdef")
            let reader = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse")
            var data = ""
            while data != "abcdef", let event = await reader.next() {
                if event.event == "data" { data += event.data }
            }
            try await eventually { edges.edge.metrics.registry.emitToString().contains(#"ds_edge_requests_total{class="sse",cache="MISS"} 1"#) }
            await reader.close()
            // A closed stream is answered from catch-up reads alone: one SSE request, a HIT.
            _ = try await edges.request(.PUT, "/v1/stream/done", headers: [("Content-Type", "text/plain"), ("Stream-Closed", "true")], body: "xyz")
            let closed = try await SSEReader.open(port: edges.port, "/v1/stream/done?offset=-1&live=sse")
            _ = await closed.remaining()
            let text = edges.edge.metrics.registry.emitToString()
            #expect(text.contains(#"ds_edge_requests_total{class="sse",cache="HIT"} 1"#))
            #expect(EdgeTopology.sum(text, metric: "ds_edge_requests_total", label: #"class="catch_up""#) == 0)
            #expect(EdgeTopology.sum(text, metric: "ds_edge_upstream_requests_total", label: #"class="catch_up""#) > 0)
        }
    }

    @Test func lateJoinerFromTheStartSeesTheWholeStream() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "a")
            let early = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse")
            #expect(await data(from: early, count: 1) == ["a"])
            for message in ["b", "c"] {
                _ = try await edges.request(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: message)
            }
            #expect(await data(from: early, count: 2) == ["b", "c"])
            let late = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse")
            let caughtUp = await data(from: late, count: 1)
            #expect(caughtUp.joined() == "abc")
            _ = try await edges.request(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "d")
            #expect(await data(from: late, count: 1) == ["d"])
            #expect(await data(from: early, count: 1) == ["d"])
            await early.close()
            await late.close()
        }
    }

    @Test func binaryStreamsAreBase64AndClosureEndsEveryone() async throws {
        try await withEdges { edges in
            _ = try await edges.request(.PUT, "/v1/stream/bin", headers: [("Content-Type", "application/octet-stream")])
            let readers = [
                try await SSEReader.open(port: edges.port, "/v1/stream/bin?offset=-1&live=sse"),
                try await SSEReader.open(port: edges.port, "/v1/stream/bin?offset=-1&live=sse"),
            ]
            for reader in readers { _ = await reader.next() }
            _ = try await edges.request(.POST, "/v1/stream/bin", headers: [("Content-Type", "application/octet-stream"), ("Stream-Closed", "true")], body: "\u{1}\u{2}")
            for reader in readers {
                let events = await reader.remaining()
                let payload = events.first { $0.event == "data" }.flatMap { Data(base64Encoded: $0.data) }
                #expect(payload.map(Array.init) == [1, 2])
                #expect(events.last?.data.contains("\"streamClosed\":true") == true)
                #expect(try await reader.response.get().header("stream-sse-data-encoding") == "base64")
            }
        }
    }

    @Test func missingStreamIsA404NotAnEventStream() async throws {
        try await withEdges { edges in
            let response = try await edges.request(.GET, "/v1/stream/nope?offset=-1&live=sse")
            #expect(response.status == 404)
        }
    }

    @Test func subscriptionSurvivesTheUpstreamsPeriodicClose() async throws {
        try await withEdges(origin: { $0.sseReconnectInterval = .milliseconds(150) }) { edges in
            _ = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")])
            let reader = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse")
            _ = await reader.next()
            var expected: [String] = []
            for index in 0..<10 {
                let message = "x\(index)"
                expected.append(message)
                _ = try await edges.originRequest(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: message)
                #expect(await data(from: reader, count: 1) == [message])
                try await Task.sleep(for: .milliseconds(40))  // spreads appends across upstream reconnects; outcome does not depend on it
            }
            await reader.close()
            #expect(edges.originRequests("sse") >= 2)
        }
    }

    /// A new SSE client whose catch-up ends at a cached tail answer the shared subscription has
    /// already passed (the append went to the origin, not through this edge) is brought up to the
    /// subscription and sees what followed; the edge must neither loop on that cached answer nor
    /// drop the client.
    @Test func aClientBehindTheSubscriptionCatchesUpPastAStaleCachedTail() async throws {
        try await withEdges(origin: { $0.sseReconnectInterval = .seconds(600) }, edge: { $0.sseReconnectInterval = .seconds(600) }) { edges in
            let created = try await edges.request(.PUT, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "a")
            let tail = try #require(created.header("Stream-Next-Offset"))
            // The first client attaches: the shared subscription now follows the stream.
            let first = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=-1&live=sse")
            #expect(await data(from: first, count: 1) == ["a"])
            // An up-to-date answer at the tail, cached by the edge.
            let atTail = try await edges.request(.GET, "/v1/stream/feed?offset=\(tail)")
            #expect(atTail.status == 200)
            #expect(atTail.header("Stream-Up-To-Date") == "true")
            #expect(try await edges.request(.GET, "/v1/stream/feed?offset=\(tail)").header("X-Cache") == "HIT")
            // Appended at the origin: only the subscription sees it pass.
            _ = try await edges.originRequest(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "b")
            #expect(await data(from: first, count: 1) == ["b"])
            // A second client from the old tail: its catch-up meets the cached answer.
            let second = try await SSEReader.open(port: edges.port, "/v1/stream/feed?offset=\(tail)&live=sse")
            #expect(await data(from: second, count: 1) == ["b"])
            _ = try await edges.originRequest(.POST, "/v1/stream/feed", headers: [("Content-Type", "text/plain")], body: "c")
            #expect(await data(from: second, count: 1) == ["c"])
            await first.close()
            await second.close()
        }
    }
}
