import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Idempotent producers (§5.2.1)")
struct ProducerTests {
    func producer(_ id: String, _ epoch: Int, _ seq: Int) -> [(String, String)] {
        [("Content-Type", "text/plain"), ("Producer-Id", id), ("Producer-Epoch", String(epoch)), ("Producer-Seq", String(seq))]
    }

    @Test func newDataIs200AndRetryIs204WithHighestSeq() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            for seq in 0...2 {
                let response = try await origin.request(.POST, path, headers: producer("p", 0, seq), text: "\(seq)")
                #expect(response.status == 200)
                #expect(response.header("Producer-Epoch") == "0")
                #expect(response.header("Producer-Seq") == String(seq))
            }
            let retry = try await origin.request(.POST, path, headers: producer("p", 0, 1), text: "different")
            #expect(retry.status == 204)
            #expect(retry.header("Producer-Seq") == "2")
            #expect(try await origin.readAll(path).text == "012")
        }
    }

    @Test func gapIs409WithExpectedAndReceived() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            _ = try await origin.request(.POST, path, headers: producer("p", 0, 0), text: "a")
            let gap = try await origin.request(.POST, path, headers: producer("p", 0, 2), text: "c")
            #expect(gap.status == 409)
            #expect(gap.header("Producer-Expected-Seq") == "1")
            #expect(gap.header("Producer-Received-Seq") == "2")
            let unknown = try await origin.request(.POST, path, headers: producer("q", 0, 5), text: "z")
            #expect(unknown.status == 409)
            #expect(unknown.header("Producer-Expected-Seq") == "0")
        }
    }

    @Test func staleEpochIs403AndNewEpochMustStartAtZero() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            #expect(try await origin.request(.POST, path, headers: producer("p", 1, 0), text: "a").status == 200)
            let stale = try await origin.request(.POST, path, headers: producer("p", 0, 1), text: "b")
            #expect(stale.status == 403)
            #expect(stale.header("Producer-Epoch") == "1")
            #expect(try await origin.request(.POST, path, headers: producer("p", 2, 3), text: "c").status == 400)
            #expect(try await origin.request(.POST, path, headers: producer("p", 2, 0), text: "d").status == 200)
        }
    }

    @Test(arguments: [
        [("Producer-Id", "p")],
        [("Producer-Id", "p"), ("Producer-Epoch", "0")],
        [("Producer-Id", ""), ("Producer-Epoch", "0"), ("Producer-Seq", "0")],
        [("Producer-Id", "p"), ("Producer-Epoch", "1abc"), ("Producer-Seq", "0")],
        [("Producer-Id", "p"), ("Producer-Epoch", "0"), ("Producer-Seq", "-1")],
        [("Producer-Id", "p"), ("Producer-Epoch", "9007199254740992"), ("Producer-Seq", "0")],
    ])
    func malformedProducerHeadersAre400(headers: [(String, String)]) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")] + headers, text: "x")
            #expect(response.status == 400)
        }
    }

    @Test func closingAppendIsDeduplicated() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let close = try await origin.request(.POST, path, headers: producer("p", 0, 0) + [("Stream-Closed", "true")], text: "end")
            #expect(close.status == 200)
            #expect(close.header("Stream-Closed") == "true")
            let retry = try await origin.request(.POST, path, headers: producer("p", 0, 0) + [("Stream-Closed", "true")], text: "other")
            #expect(retry.status == 204)
            #expect(retry.header("Stream-Closed") == "true")
            let other = try await origin.request(.POST, path, headers: producer("p", 0, 1), text: "more")
            #expect(other.status == 409)
            #expect(other.header("Stream-Closed") == "true")
            #expect(try await origin.readAll(path).text == "end")
        }
    }

    @Test func failedAppendDoesNotAdvanceProducer() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json")
            var headers = producer("p", 0, 0)
            headers[0] = ("Content-Type", "application/json")
            #expect(try await origin.request(.POST, path, headers: headers, text: "{oops").status == 400)
            #expect(try await origin.request(.POST, path, headers: headers, text: "[]").status == 400)
            #expect(try await origin.request(.POST, path, headers: headers, text: "{\"ok\":1}").status == 200)
        }
    }

    /// 20 producer appends sent at once on separate connections: requests arrive in any order,
    /// so a client retries a 409 gap (the seq it must wait for is still in flight) until
    /// accepted. Every seq must be stored exactly once, in seq order.
    @Test func concurrentProducerAppendsAreStoredOnceInOrder() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for seq in 0..<20 {
                    group.addTask {
                        // One connection per producer request stream, as a real client keeps.
                        let connection = try await TestConnection.connect(port: origin.port)
                        defer { Task { await connection.close() } }
                        for _ in 0..<2_000 {
                            let response = try await connection.request(
                                .POST, path, headers: producer("p", 0, seq), body: Array("[\(seq)]".utf8))
                            if response.status == 200 || response.status == 204 { return }
                            #expect(response.status == 409, "unexpected \(response.status)")
                            #expect(response.header("Producer-Expected-Seq") != nil)
                            try await Task.sleep(for: .milliseconds(1))  // back off; the outcome does not depend on it
                        }
                        Issue.record("seq \(seq) never accepted")
                    }
                }
                try await group.waitForAll()
            }
            let expected = (0..<20).map { "[\($0)]" }.joined()
            #expect(try await origin.readAll(path).text == expected)
        }
    }

    /// 20 appends pipelined on one connection are answered and stored in order.
    @Test func pipelinedAppendsOnOneConnection() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let connection = try await TestConnection.connect(port: origin.port)
            let futures = (0..<20).map { seq in
                connection.send(.POST, path, headers: producer("p", 0, seq), body: Array("<\(seq)>".utf8))
            }
            var offsets: [String] = []
            for future in futures {
                let response = try await future.get()
                #expect(response.status == 200)
                offsets.append(response.header("Stream-Next-Offset") ?? "")
            }
            await connection.close()
            #expect(offsets == offsets.sorted())
            #expect(Set(offsets).count == 20)
            #expect(try await origin.readAll(path).text == (0..<20).map { "<\($0)>" }.joined())
        }
    }
}
