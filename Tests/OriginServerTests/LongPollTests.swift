import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Long-poll (§5.7, §10.1)")
struct LongPollTests {
    @Test func existingDataReturnsAtOnceWithCursor() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "ready")
            let response = try await origin.request(.GET, "\(path)?offset=-1&live=long-poll")
            #expect(response.status == 200)
            #expect(response.text == "ready")
            #expect(response.header("Stream-Up-To-Date") == "true")
            let cursor = try #require(response.header("Stream-Cursor"))
            let numeric = cursor.allSatisfy(\.isNumber)
            #expect(numeric)
        }
    }

    @Test func timeoutIs204WithOffsetUpToDateAndCursor() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let tail = "0000000000000000_0000000000000003"
            let response = try await origin.request(.GET, "\(path)?offset=\(tail)&live=long-poll")
            #expect(response.status == 204)
            #expect(response.header("Stream-Next-Offset") == tail)
            #expect(response.header("Stream-Up-To-Date") == "true")
            #expect(response.header("Stream-Cursor") != nil)
        }
    }

    @Test func appendWakesAWaitingLongPoll() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let (connection, poll) = try await origin.parkedLongPoll(path, offset: "0000000000000000_0000000000000000")
            try await origin.append(path, "wake")
            let response = try await poll.get()
            await connection.close()
            #expect(response.status == 200)
            #expect(response.text == "wake")
        }
    }

    @Test func closeWakesAWaitingLongPollWithEOF() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let (connection, poll) = try await origin.parkedLongPoll(path, offset: "0000000000000000_0000000000000000")
            _ = try await origin.request(.POST, path, headers: [("Stream-Closed", "true")])
            let response = try await poll.get()
            await connection.close()
            #expect(response.status == 204)
            #expect(response.header("Stream-Closed") == "true")
        }
    }

    @Test func closedStreamAtTailAnswersImmediately() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "x", headers: [("Stream-Closed", "true")])
            for offset in ["0000000000000000_0000000000000001", "now"] {
                let response = try await origin.request(.GET, "\(path)?offset=\(offset)&live=long-poll")
                #expect(response.status == 204)
                #expect(response.header("Stream-Closed") == "true")
                #expect(response.header("Stream-Up-To-Date") == "true")
                #expect(response.header("Stream-Next-Offset") == "0000000000000000_0000000000000001")
            }
        }
    }

    @Test func offsetNowWaitsForNewDataOnly() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "history")
            let (connection, poll) = try await origin.parkedLongPoll(path, offset: "now")
            try await origin.append(path, "fresh")
            let response = try await poll.get()
            await connection.close()
            #expect(response.status == 200)
            #expect(response.text == "fresh")
        }
    }

    @Test func offsetNowTimesOutAtTail() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let response = try await origin.request(.GET, "\(path)?offset=now&live=long-poll")
            #expect(response.status == 204)
            #expect(response.header("Stream-Next-Offset") == "0000000000000000_0000000000000003")
        }
    }

    @Test func echoedCursorAdvances() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let first = try await origin.request(.GET, "\(path)?offset=-1&live=long-poll")
            let cursor = try #require(first.header("Stream-Cursor").flatMap { UInt64($0) })
            let second = try await origin.request(.GET, "\(path)?offset=-1&live=long-poll&cursor=\(cursor)")
            let next = try #require(second.header("Stream-Cursor").flatMap { UInt64($0) })
            #expect(next > cursor)
            let far = try await origin.request(.GET, "\(path)?offset=-1&live=long-poll&cursor=\(cursor + 1000)")
            #expect(try #require(far.header("Stream-Cursor").flatMap { UInt64($0) }) > cursor + 1000)
        }
    }

    @Test func liveWithoutOffsetIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            #expect(try await origin.request(.GET, "\(path)?live=long-poll").status == 400)
            #expect(try await origin.request(.GET, "\(path)?live=sse").status == 400)
            #expect(try await origin.request(.GET, "\(path)?offset=-1&live=websocket").status == 400)
        }
    }

    @Test func deleteEndsAWaitingLongPollWith404() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let (connection, poll) = try await origin.parkedLongPoll(path, offset: "now")
            #expect(try await origin.request(.DELETE, path).status == 204)
            #expect(try await poll.get().status == 404)
            await connection.close()
        }
    }
}

/// Polls `condition` (bounded, without fixed sleeps deciding the outcome) until it holds.
func waitUntil(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<2_000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("condition never became true")
}
