import Foundation
import NIOCore
import TestSupport
import Testing

@Suite("SSE (§5.8)")
struct SSETests {
    struct Control: Decodable {
        var streamNextOffset: String
        var streamCursor: String?
        var upToDate: Bool?
        var streamClosed: Bool?
    }

    func control(_ event: SSEEvent?) throws -> Control {
        let event = try #require(event)
        #expect(event.event == "control")
        return try JSONDecoder().decode(Control.self, from: Data(event.data.utf8))
    }

    @Test func headersAndFirstBatch() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "line1\nline2")
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let data = try #require(await reader.next())
            #expect(data == SSEEvent(event: "data", data: "line1\nline2"))
            let control = try control(await reader.next())
            #expect(control.streamNextOffset == "0000000000000000_0000000000000011")
            #expect(control.upToDate == true)
            let numeric = control.streamCursor.map { $0.allSatisfy(\.isNumber) }
            #expect(numeric == true)
            await reader.close()
            let response = try await reader.response.get()
            #expect(response.header("Content-Type") == "text/event-stream")
            #expect(response.header("Cache-Control")?.contains("no-cache") == true)
            #expect(response.header("stream-sse-data-encoding") == nil)
            #expect(response.header("Content-Length") == nil)
            // The connection ends with the response; saying so keeps clients from sending their
            // next request into a closing socket.
            #expect(response.header("Connection")?.lowercased() == "close")
        }
    }

    @Test func wireFormatHasNoSpaceAfterDataColon() async throws {
        try await withOrigin(configure: { $0.sseReconnectInterval = .milliseconds(200) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "a\r\nb")
            let raw = try await TestHTTPRaw.exchange(port: origin.port, "GET \(path)?offset=-1&live=sse HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(raw.contains("event: data\r\n") || raw.contains("event: data\n"))
            #expect(raw.contains("data:a\ndata:b\n"))
            #expect(raw.contains("event: control\ndata:{\"streamNextOffset\":"))
        }
    }

    @Test func binaryStreamsAreBase64() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/octet-stream")
            let bytes: [UInt8] = Array("Hello".utf8) + (0..<200).map { UInt8($0) }
            _ = try await origin.request(.POST, path, headers: [("Content-Type", "application/octet-stream")], body: bytes)
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let data = try #require(await reader.next())
            #expect(data.event == "data")
            let decoded = try #require(Data(base64Encoded: data.data.replacingOccurrences(of: "\n", with: "")))
            #expect(Array(decoded) == bytes)
            #expect(try control(await reader.next()).upToDate == true)
            await reader.close()
            #expect(try await reader.response.get().header("stream-sse-data-encoding") == "base64")
        }
    }

    @Test func jsonStreamsSendArrays() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json", body: #"[{"id":1,"text":"a\nb"},{"id":2}]"#)
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let data = try #require(await reader.next())
            let parsed = try JSONSerialization.jsonObject(with: Data(data.data.utf8)) as? [[String: Any]]
            #expect(parsed?.count == 2)
            #expect(parsed?.first?["text"] as? String == "a\nb")
            await reader.close()
        }
    }

    /// Every append reaches the reader once, in order, with control offsets strictly increasing.
    @Test func liveReaderSeesEveryEventInOrder() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let first = try control(await reader.next())
            #expect(first.upToDate == true)
            var received = ""
            var lastOffset = first.streamNextOffset
            for index in 0..<50 {
                try await origin.append(path, "<\(index)>")
                // Read events until this append's data has arrived.
                while !received.hasSuffix("<\(index)>") {
                    let event = try #require(await reader.next())
                    if event.event == "data" {
                        received += event.data
                    } else {
                        let control = try control(event)
                        #expect(control.streamNextOffset > lastOffset)
                        lastOffset = control.streamNextOffset
                    }
                }
            }
            await reader.close()
            #expect(received == (0..<50).map { "<\($0)>" }.joined())
        }
    }

    @Test func emptyStreamAndOffsetNowStartWithUpToDateControl() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "history")
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=now&live=sse")
            let first = try control(await reader.next())
            #expect(first.upToDate == true)
            #expect(first.streamNextOffset == "0000000000000000_0000000000000007")
            try await origin.append(path, "new")
            #expect(await reader.next() == SSEEvent(event: "data", data: "new"))
            await reader.close()
        }
    }

    @Test func closedStreamEndsWithClosedControlAndConnectionClose() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "all", headers: [("Stream-Closed", "true")])
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let events = await reader.remaining()
            #expect(events.count == 2)
            #expect(events.first == SSEEvent(event: "data", data: "all"))
            let last = try control(events.last)
            #expect(last.streamClosed == true)
            #expect(last.streamCursor == nil)
        }
    }

    @Test func closeWhileTailingDeliversDataThenClosure() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            _ = try control(await reader.next())
            _ = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain"), ("Stream-Closed", "true")], text: "bye")
            let events = await reader.remaining()
            #expect(events.first == SSEEvent(event: "data", data: "bye"))
            #expect(try control(events.last).streamClosed == true)
        }
    }

    @Test func serverClosesAfterReconnectInterval() async throws {
        try await withOrigin(configure: { $0.sseReconnectInterval = .milliseconds(100) }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "x")
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            let events = await reader.remaining()  // returns only because the server ended the response
            #expect(events.count == 2)
            #expect(try control(events.last).streamClosed == nil)
        }
    }

    @Test func resumeFromControlOffsetSkipsDeliveredData() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "first")
            let reader = try await SSEReader.open(port: origin.port, "\(path)?offset=-1&live=sse")
            _ = await reader.next()
            let offset = try control(await reader.next()).streamNextOffset
            await reader.close()
            try await origin.append(path, "second")
            let resumed = try await SSEReader.open(port: origin.port, "\(path)?offset=\(offset)&live=sse")
            #expect(await resumed.next() == SSEEvent(event: "data", data: "second"))
            await resumed.close()
        }
    }
}
