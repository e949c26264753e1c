import Testing

@Suite("PUT: create (§5.1)")
struct CreateStreamTests {
    @Test func malformedForkHeadersAreRefusedAndCreateNothing() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath()
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath()
            // What a fork request gets wrong on its own is a 400 (§4.2).
            let stray = try await origin.request(.PUT, fork, headers: [("Stream-Fork-Sub-Offset", "0")])
            #expect(stray.status == 400)
            let malformed = try await origin.request(
                .PUT, fork, headers: [("Stream-Forked-From", source), ("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "05")])
            #expect(malformed.status == 400)
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    @Test func createsWithLocationTypeAndOffset() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            let response = try await origin.create(path, type: "text/plain; charset=utf-8")
            #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(response.header("Stream-Next-Offset") == "0000000000000000_0000000000000000")
            let location = try #require(response.header("Location"))
            #expect(location.hasPrefix("http://"))
            #expect(location.hasSuffix(path))
        }
    }

    @Test func sameConfigurationIsIdempotent() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, headers: [("Stream-TTL", "3600")])
            let again = try await origin.request(.PUT, path, headers: [("Content-Type", "TEXT/PLAIN"), ("Stream-TTL", "3600")])
            #expect(again.status == 200)
            #expect(again.header("Location") == nil)
        }
    }

    @Test(arguments: [
        [("Content-Type", "application/json")],
        [("Content-Type", "text/plain"), ("Stream-TTL", "60")],
        [("Content-Type", "text/plain"), ("Stream-Closed", "true")],
    ])
    func differentConfigurationConflicts(headers: [(String, String)]) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path)
            let again = try await origin.request(.PUT, path, headers: headers)
            #expect(again.status == 409)
        }
    }

    @Test func closedStreamMatchesOnlyAClosedPut() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            let created = try await origin.create(path, body: "final", headers: [("Stream-Closed", "true")])
            #expect(created.header("Stream-Closed") == "true")
            #expect(try await origin.request(.PUT, path, headers: [("Content-Type", "text/plain")]).status == 409)
            #expect(try await origin.request(.PUT, path, headers: [("Content-Type", "text/plain"), ("Stream-Closed", "true")]).status == 200)
            let read = try await origin.request(.GET, "\(path)?offset=-1")
            #expect(read.text == "final")
            #expect(read.header("Stream-Closed") == "true")
        }
    }

    @Test func initialBodyIsReadable() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            let created = try await origin.create(path, body: "hello")
            #expect(created.header("Stream-Next-Offset") == "0000000000000000_0000000000000005")
            let read = try await origin.request(.GET, path)
            #expect(read.text == "hello")
            #expect(read.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test func missingContentTypeDefaultsToOctetStream() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            let response = try await origin.request(.PUT, path)
            #expect(response.status == 201)
            #expect(response.header("Content-Type") == "application/octet-stream")
        }
    }

    @Test(arguments: ["abc", "-1", "00060", "+60", "60.5", "1e3", ""])
    func invalidTTLIsRejected(ttl: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.PUT, Origin.uniquePath(), headers: [("Content-Type", "text/plain"), ("Stream-TTL", ttl)])
            #expect(response.status == 400)
            #expect(!response.text.isEmpty)
        }
    }

    @Test func ttlAndExpiresAtTogetherAreRejected() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.PUT, Origin.uniquePath(), headers: [
                ("Content-Type", "text/plain"), ("Stream-TTL", "60"), ("Stream-Expires-At", "2099-01-01T00:00:00Z"),
            ])
            #expect(response.status == 400)
        }
    }

    @Test func invalidExpiresAtIsRejected() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let response = try await origin.request(.PUT, Origin.uniquePath(), headers: [("Content-Type", "text/plain"), ("Stream-Expires-At", "tomorrow")])
            #expect(response.status == 400)
        }
    }

    @Test func recreateAfterDeleteStartsEmpty() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "old")
            #expect(try await origin.request(.DELETE, path).status == 204)
            try await origin.create(path)
            let read = try await origin.request(.GET, path)
            #expect(read.body.isEmpty)
        }
    }
}

@Suite("HEAD and DELETE (§5.4, §5.5)")
struct MetadataTests {
    @Test func headReportsMetadataWithoutBodyAndNoStore() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "abc", headers: [("Stream-TTL", "3600")])
            let head = try await origin.request(.HEAD, path)
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Content-Type") == "text/plain")
            #expect(head.header("Stream-Next-Offset") == "0000000000000000_0000000000000003")
            #expect(head.header("Stream-TTL") == "3600")
            #expect(head.header("Cache-Control")?.contains("no-store") == true)
            #expect(head.header("Stream-Closed") == nil)
        }
    }

    @Test func headShowsExpiresAtAndClosure() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, headers: [("Stream-Expires-At", "2099-01-01T00:00:00Z"), ("Stream-Closed", "true")])
            let head = try await origin.request(.HEAD, path)
            #expect(head.header("Stream-Expires-At") == "2099-01-01T00:00:00Z")
            #expect(head.header("Stream-Closed") == "true")
        }
    }

    @Test func missingStreamIs404ForEveryOperation() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            #expect(try await origin.request(.HEAD, path).status == 404)
            #expect(try await origin.request(.GET, path).status == 404)
            #expect(try await origin.request(.GET, "\(path)?offset=-1&live=long-poll").status == 404)
            #expect(try await origin.request(.GET, "\(path)?offset=-1&live=sse").status == 404)
            #expect(try await origin.request(.POST, path, headers: [("Content-Type", "text/plain")], text: "x").status == 404)
            #expect(try await origin.request(.POST, path, headers: [("Stream-Closed", "true")]).status == 404)
            #expect(try await origin.request(.DELETE, path).status == 404)
        }
    }

    @Test func deleteRemovesTheStream() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, body: "x")
            #expect(try await origin.request(.DELETE, path).status == 204)
            #expect(try await origin.request(.GET, path).status == 404)
            #expect(try await origin.request(.HEAD, path).status == 404)
        }
    }
}
