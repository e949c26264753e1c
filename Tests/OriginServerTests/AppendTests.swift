import Testing

@Suite("POST: append (§5.2)")
struct AppendTests {
    @Test func appendReturns204WithNextOffsetAndDataIsRead() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let first = try await origin.append(path, "hello ")
            let second = try await origin.append(path, "world")
            #expect(first < second)
            #expect(try await origin.readAll(path).text == "hello world")
        }
    }

    @Test func emptyBodyWithoutCloseIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")])
            #expect(response.status == 400)
        }
    }

    @Test func bodyWithoutContentTypeIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            #expect(try await origin.request(.POST, path, body: [1, 2, 3]).status == 400)
        }
    }

    @Test func mismatchedContentTypeIs409ButCaseAndParametersMatch() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "application/json")], text: "{}").status == 409)
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "TEXT/PLAIN; charset=utf-8")], text: "ok").status == 204)
        }
    }

    @Test func streamSeqMustStrictlyIncrease() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            try await origin.append(path, "a", headers: [("Stream-Seq", "001")])
            try await origin.append(path, "b", headers: [("Stream-Seq", "002")])
            let regress = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain"), ("Stream-Seq", "002")], text: "c")
            #expect(regress.status == 409)
            // Byte-wise order: "10" sorts before "9".
            try await origin.append(path, "d", headers: [("Stream-Seq", "9")])
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "text/plain"), ("Stream-Seq", "10")], text: "e").status == 409)
            #expect(try await origin.readAll(path).text == "abd")
        }
    }

    @Test func binaryBytesRoundTripExactly() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/octet-stream")
            let bytes: [UInt8] = (0...255).map { UInt8($0) } + [0, 0xFF, 0x0D, 0x0A]
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "application/octet-stream")], body: bytes)
            #expect(response.status == 204)
            #expect(try await origin.readAll(path) == bytes)
        }
    }

    @Test func chunkedRequestBodyIsAccepted() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let request = "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            let reply = try await TestHTTPRaw.exchange(port: origin.port, request)
            #expect(reply.hasPrefix("HTTP/1.1 204"))
            #expect(try await origin.readAll(path).text == "hello world")
        }
    }
}

@Suite("Closing streams (§4.1, §5.3)")
struct ClosureTests {
    @Test func closeOnlyIsIdempotentAndReportsTail() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let close = try await origin.request(.POST, path, headers: [("Stream-Closed", "true")])
            #expect(close.status == 204)
            #expect(close.header("Stream-Closed") == "true")
            #expect(close.header("Stream-Next-Offset") == "0000000000000000_0000000000000003")
            let again = try await origin.request(.POST, path, headers: [("Stream-Closed", "true"), ("Content-Type", "application/json")])
            #expect(again.status == 204)
            #expect(again.header("Stream-Closed") == "true")
        }
    }

    /// §5.2.1 / §5.3: a close-only request with producer headers answers 204 (no data was
    /// appended) with the stream closed and the producer's state; its retry the same; another
    /// producer's close on the closed stream is a 409 that says the stream is closed.
    @Test func closeOnlyWithProducerHeadersIs204AndIdempotent() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let producer = { (id: String, seq: Int) in [("Producer-Id", id), ("Producer-Epoch", "0"), ("Producer-Seq", String(seq))] }
            let first = try await origin.request(.POST, path, headers: producer("p", 0) + [("Content-Type", "text/plain")], text: "message")
            #expect(first.status == 200)
            let close = try await origin.request(.POST, path, headers: producer("p", 1) + [("Stream-Closed", "true")])
            #expect(close.status == 204)
            #expect(close.header("Stream-Closed") == "true")
            #expect(close.header("Producer-Epoch") == "0")
            #expect(close.header("Producer-Seq") == "1")
            let retry = try await origin.request(.POST, path, headers: producer("p", 1) + [("Stream-Closed", "true")])
            #expect(retry.status == 204)
            #expect(retry.header("Stream-Closed") == "true")
            let other = try await origin.request(.POST, path, headers: producer("q", 0) + [("Stream-Closed", "true")])
            #expect(other.status == 409)
            #expect(other.header("Stream-Closed") == "true")
            #expect(try await origin.request(.GET, path).text == "message")
        }
    }

    @Test func appendAndCloseIsAtomic() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "text/plain"), ("Stream-Closed", "true")], text: "last")
            #expect(response.status == 204)
            #expect(response.header("Stream-Closed") == "true")
            let read = try await origin.request(.GET, "\(path)?offset=-1")
            #expect(read.text == "last")
            #expect(read.header("Stream-Closed") == "true")
            #expect(read.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test func appendToClosedStreamIs409WithClosedAndOffset() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "xy")
            let close = try await origin.request(.POST, path, headers: [("Stream-Closed", "true")])
            for headers in [[("Content-Type", "text/plain")], [("Content-Type", "text/plain"), ("Stream-Closed", "true")], [("Content-Type", "application/json")]] {
                let rejected = try await origin.request(.POST, path, headers: headers, text: "more")
                #expect(rejected.status == 409)
                #expect(rejected.header("Stream-Closed") == "true")
                #expect(rejected.header("Stream-Next-Offset") == close.header("Stream-Next-Offset"))
            }
        }
    }

    @Test func nonTrueClosedValuesAreIgnored() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            try await origin.append(path, "a", headers: [("Stream-Closed", "false")])
            try await origin.append(path, "b", headers: [("Stream-Closed", "yes")])
            let head = try await origin.request(.HEAD, path)
            #expect(head.header("Stream-Closed") == nil)
            try await origin.append(path, "c", headers: [("Stream-Closed", "TRUE")])
            #expect(try await origin.request(.HEAD, path).header("Stream-Closed") == "true")
        }
    }

    @Test func readAtTailOfClosedStreamSignalsEOF() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "data")
            let read = try await origin.request(.GET, path)
            #expect(read.header("Stream-Closed") == nil)
            _ = try await origin.request(.POST, path, headers: [("Stream-Closed", "true")])
            let eof = try await origin.request(.GET, "\(path)?offset=\(read.header("Stream-Next-Offset")!)")
            #expect(eof.status == 200)
            #expect(eof.body.isEmpty)
            #expect(eof.header("Stream-Closed") == "true")
            #expect(eof.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test func partialReadOfClosedStreamIsNotMarkedClosed() async throws {
        try await withOrigin(configure: { $0.maxChunkBytes = 4 }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "12345678", headers: [("Stream-Closed", "true")])
            let first = try await origin.request(.GET, path)
            #expect(first.text == "1234")
            #expect(first.header("Stream-Closed") == nil)
            #expect(first.header("Stream-Up-To-Date") == nil)
            let second = try await origin.request(.GET, "\(path)?offset=\(first.header("Stream-Next-Offset")!)")
            #expect(second.text == "5678")
            #expect(second.header("Stream-Closed") == "true")
        }
    }
}
