import Foundation
import Testing

@Suite("GET: catch-up reads (§5.6, §8)")
struct CatchUpReadTests {
    @Test func offsetMinusOneAndNoOffsetAreTheSame() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let a = try await origin.request(.GET, path)
            let b = try await origin.request(.GET, "\(path)?offset=-1")
            #expect(a.body == b.body)
            #expect(a.header("Stream-Next-Offset") == b.header("Stream-Next-Offset"))
        }
    }

    @Test func readFromTailIsEmptyAndUpToDate() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let tail = try await origin.request(.GET, path).header("Stream-Next-Offset")!
            let read = try await origin.request(.GET, "\(path)?offset=\(tail)")
            #expect(read.status == 200)
            #expect(read.body.isEmpty)
            #expect(read.header("Stream-Next-Offset") == tail)
            #expect(read.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test func resumesFromAnyReturnedOffset() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let afterA = try await origin.append(path, "aaa")
            try await origin.append(path, "bbb")
            #expect(try await origin.request(.GET, "\(path)?offset=\(afterA)").text == "bbb")
        }
    }

    @Test func offsetNowSkipsHistory() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "old")
            let now = try await origin.request(.GET, "\(path)?offset=now")
            #expect(now.status == 200)
            #expect(now.body.isEmpty)
            #expect(now.header("Stream-Up-To-Date") == "true")
            #expect(now.header("Stream-Next-Offset") == "0000000000000000_0000000000000003")
            #expect(now.header("Cache-Control")?.contains("no-store") == true)
            #expect(now.header("ETag") == nil)
            try await origin.append(path, "new")
            #expect(try await origin.request(.GET, "\(path)?offset=\(now.header("Stream-Next-Offset")!)").text == "new")
        }
    }

    @Test func offsetNowOnClosedStreamSignalsClosure() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "x", headers: [("Stream-Closed", "true")])
            let now = try await origin.request(.GET, "\(path)?offset=now")
            #expect(now.header("Stream-Closed") == "true")
            #expect(now.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test(arguments: ["", "abc", "0,1", "0%201", "12", "0000000000000000_000000000000000x", "../x", "0000000000000001_0000000000000000"])
    func malformedOffsetsAre400(offset: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let response = try await origin.request(.GET, "\(path)?offset=\(offset)")
            #expect(response.status == 400)
        }
    }

    @Test func repeatedOffsetIs400AndUnknownParametersAreIgnored() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            #expect(try await origin.request(.GET, "\(path)?offset=-1&offset=now").status == 400)
            let extra = try await origin.request(.GET, "\(path)?foo=bar&offset=-1&baz=qux")
            #expect(extra.status == 200)
            #expect(extra.text == "abc")
        }
    }

    @Test func offsetBeyondTailIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            #expect(try await origin.request(.GET, "\(path)?offset=0000000000000000_0000000000000099").status == 400)
        }
    }

    /// 5 MB of binary data read back chunk by chunk under a small chunk limit.
    @Test func largeBinaryRoundTripInChunks() async throws {
        try await withOrigin(configure: { $0.maxChunkBytes = 64 * 1024; $0.maxBodyBytes = 8 << 20 }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/octet-stream")
            var generator = SystemRandomNumberGenerator()
            let payload = (0..<(5 * 1024 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Two appends, so the data spans a memory segment boundary mid-append.
            let half = payload.count / 2 + 17
            for part in [Array(payload[..<half]), Array(payload[half...])] {
                let response = try await origin.request(.POST, path, headers: [("Content-Type", "application/octet-stream")], body: part)
                #expect(response.status == 204)
            }
            var received: [UInt8] = []
            var next = "-1"
            var reads = 0
            while true {
                let response = try await origin.request(.GET, "\(path)?offset=\(next)")
                #expect(response.body.count <= 64 * 1024)
                received += response.body
                reads += 1
                next = response.header("Stream-Next-Offset")!
                if response.header("Stream-Up-To-Date") == "true" { break }
                #expect(reads < 200)
            }
            #expect(reads >= 80)
            #expect(received == payload)
        }
    }

    @Test func streamNamesMayHaveSeveralSegments() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = "/v1/stream/tenant-\(UInt32.random(in: 0...UInt32.max))/room/1"
            try await origin.create(path, body: "nested")
            #expect(try await origin.request(.GET, path).text == "nested")
        }
    }
}

@Suite("ETags, 304 and Cache-Control (§10)")
struct CachingTests {
    @Test func ifNoneMatchGives304AndChangesAfterAppend() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let first = try await origin.request(.GET, path)
            let etag = try #require(first.header("ETag"))
            let cached = try await origin.request(.GET, path, headers: [("If-None-Match", etag)])
            #expect(cached.status == 304)
            #expect(cached.body.isEmpty)
            #expect(try await origin.request(.GET, path, headers: [("If-None-Match", "\"wrong\"")]).status == 200)
            try await origin.append(path, "d")
            let changed = try await origin.request(.GET, path, headers: [("If-None-Match", etag)])
            #expect(changed.status == 200)
            #expect(changed.header("ETag") != etag)
        }
    }

    @Test func etagChangesWhenStreamCloses() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let open = try await origin.request(.GET, path)
            _ = try await origin.request(.POST, path, headers: [("Stream-Closed", "true")])
            let closed = try await origin.request(.GET, path, headers: [("If-None-Match", open.header("ETag")!)])
            #expect(closed.status == 200)
            #expect(closed.header("Stream-Closed") == "true")
            #expect(closed.header("ETag") != open.header("ETag"))
        }
    }

    @Test func historicalReadsAreCacheable() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc")
            let read = try await origin.request(.GET, path)
            #expect(read.header("Cache-Control")?.contains("public") == true)
            #expect(read.header("Cache-Control")?.contains("max-age=") == true)
        }
    }

    @Test func compressesLargeResponsesWhenAsked() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: String(repeating: "compressible text ", count: 500))
            let gzip = try await origin.request(.GET, path, headers: [("Accept-Encoding", "gzip")])
            #expect(gzip.header("Content-Encoding") == "gzip")
            #expect(gzip.body.count < 9000)
            let plain = try await origin.request(.GET, path)
            #expect(plain.header("Content-Encoding") == nil)
            #expect(plain.body.count == 9000)
        }
    }

    @Test func compressionCanBeTurnedOff() async throws {
        try await withOrigin(configure: { $0.compression = false }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: String(repeating: "x", count: 5000))
            let response = try await origin.request(.GET, path, headers: [("Accept-Encoding", "gzip")])
            #expect(response.header("Content-Encoding") == nil)
            #expect(response.body.count == 5000)
        }
    }
}

@Suite("Browser security headers (§12.7)")
struct SecurityHeaderTests {
    @Test func everyResponseCarriesNosniffCorpAndCors() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            var responses = [try await origin.create(path, body: "x")]
            responses.append(try await origin.request(.GET, path))
            responses.append(try await origin.request(.HEAD, path))
            responses.append(try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")], text: "y"))
            responses.append(try await origin.request(.GET, Origin.uniquePath()))
            responses.append(try await origin.request(.GET, "\(path)?offset=bad"))
            for response in responses {
                #expect(response.header("X-Content-Type-Options") == "nosniff")
                #expect(response.header("Cross-Origin-Resource-Policy") == "cross-origin")
                #expect(response.header("Access-Control-Expose-Headers")?.contains("Stream-Next-Offset") == true)
            }
        }
    }

    @Test func preflightAllowsProtocolHeaders() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.OPTIONS, Origin.uniquePath())
            #expect(response.status == 204)
            #expect(response.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            #expect(response.header("Access-Control-Allow-Headers")?.contains("Producer-Id") == true)
        }
    }
}
