import DurableStreams
import Testing

/// Decodes a request whose headers are looked up case-insensitively, as the server does.
private func decode(
    _ method: String, query: String = "", headers: [String: String] = [:], bodyLength: Int = 0
) throws(ProtocolError) -> StreamOperation {
    let lowered = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
    return try StreamOperation.decode(
        method: method, query: Substring(query), header: { lowered[$0.lowercased()] }, bodyLength: bodyLength)
}

private func decodeError(
    _ method: String, query: String = "", headers: [String: String] = [:], bodyLength: Int = 0
) -> ProtocolError? {
    do {
        let operation = try decode(method, query: query, headers: headers, bodyLength: bodyLength)
        Issue.record("expected a rejection, got \(operation)")
        return nil
    } catch {
        return error
    }
}

private func create(_ operation: StreamOperation) throws -> StreamOperation.Create {
    guard case .create(let create) = operation else { throw Unexpected(operation) }
    return create
}

private func append(_ operation: StreamOperation) throws -> StreamOperation.Append {
    guard case .append(let append) = operation else { throw Unexpected(operation) }
    return append
}

private func read(_ operation: StreamOperation) throws -> StreamOperation.Read {
    guard case .read(let read) = operation else { throw Unexpected(operation) }
    return read
}

private struct Unexpected: Error, CustomStringConvertible {
    let operation: StreamOperation
    init(_ operation: StreamOperation) { self.operation = operation }
    var description: String { "unexpected operation \(operation)" }
}

@Suite("Decoding PUT (create)")
struct DecodeCreateTests {
    @Test func defaults() throws {
        let op = try create(try decode("PUT"))
        // No type sent: the server applies application/octet-stream, or a fork's source type.
        #expect(op.contentType == nil)
        #expect(op.lifetime == .unlimited)
        #expect(op.closed == false)
    }

    @Test func contentTypeIsKeptVerbatim() throws {
        let op = try create(try decode("PUT", headers: ["Content-Type": "text/plain; charset=utf-8"], bodyLength: 4))
        #expect(op.contentType?.headerValue == "text/plain; charset=utf-8")
        #expect(op.contentType?.mediaType == "text/plain")
    }

    @Test func forkHeadersAreDecoded() throws {
        let fork = try #require(try create(try decode("PUT", headers: [
            "Stream-Forked-From": "/v1/stream/source", "Stream-Fork-Offset": "0000000000000000_0000000000000005",
            "Stream-Fork-Sub-Offset": "3",
        ])).fork)
        #expect(fork.source == "/v1/stream/source")
        #expect(fork.offset == StreamOffset("0000000000000000_0000000000000005"))
        #expect(fork.subOffset == 3)
        let atTail = try #require(try create(try decode("PUT", headers: ["Stream-Forked-From": "/v1/stream/s"])).fork)
        #expect(atTail.offset == nil && atTail.subOffset == 0)
        #expect(try create(try decode("PUT")).fork == nil)
    }

    /// §4.2: what a fork request can get wrong on its own is a 400, before any store is asked.
    @Test(arguments: [
        ["Stream-Fork-Sub-Offset": "0"],  // without a source, even 0
        ["Stream-Fork-Offset": "0000000000000000_0000000000000000"],
        ["Stream-Forked-From": "/v1/stream/s", "Stream-Fork-Sub-Offset": "1"],  // past the tail
        ["Stream-Forked-From": "/v1/stream/s", "Stream-Fork-Offset": "1,2"],
        ["Stream-Forked-From": "/v1/stream/s", "Stream-Fork-Offset": "-1"],
        ["Stream-Forked-From": "v1/stream/s"],
        ["Stream-Forked-From": "/v1/stream/../secret"],
        ["Stream-Forked-From": "/v1/stream/s?offset=1"],
        ["Stream-Forked-From": "/v1/stream/a b"],
    ] + ["-1", "abc", "1.5", "05", "+1", "", "18446744073709551616"].map {
        ["Stream-Forked-From": "/v1/stream/s", "Stream-Fork-Offset": "0000000000000000_0000000000000000", "Stream-Fork-Sub-Offset": $0]
    })
    func malformedForkRequestsAreBadRequests(headers: [String: String]) {
        #expect(decodeError("PUT", headers: headers)?.status == .badRequest)
    }

    @Test func malformedContentTypeIsABadRequest() {
        #expect(decodeError("PUT", headers: ["Content-Type": "garbage"])?.status == .badRequest)
    }

    @Test func ttlAndExpiresAt() throws {
        #expect(try create(try decode("PUT", headers: ["Stream-TTL": "3600"])).lifetime == .ttl(seconds: 3600))
        #expect(try create(try decode("PUT", headers: ["stream-ttl": "0"])).lifetime == .ttl(seconds: 0))
        let expires = try create(try decode("PUT", headers: ["Stream-Expires-At": "2025-01-01T00:00:00Z"])).lifetime
        #expect(expires == .expiresAt(seconds: 1_735_689_600, text: "2025-01-01T00:00:00Z"))
    }

    @Test(arguments: ["abc", "-1", "00060", "+60", "60.5", "1e3", ""])
    func invalidTTLIsABadRequest(value: String) {
        #expect(decodeError("PUT", headers: ["Stream-TTL": value])?.status == .badRequest)
    }

    @Test func invalidExpiresAtIsABadRequest() {
        #expect(decodeError("PUT", headers: ["Stream-Expires-At": "not-a-timestamp"])?.status == .badRequest)
    }

    @Test func ttlWithExpiresAtIsABadRequest() {
        let error = decodeError("PUT", headers: ["Stream-TTL": "60", "Stream-Expires-At": "2030-01-01T00:00:00Z"])
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: [("true", true), ("TRUE", true), ("True", true), ("false", false), ("yes", false), ("", false)])
    func streamClosed(value: String, closed: Bool) throws {
        #expect(try create(try decode("PUT", headers: ["Stream-Closed": value])).closed == closed)
    }
}

@Suite("Decoding POST (append and close)")
struct DecodeAppendTests {
    @Test func plainAppend() throws {
        let op = try append(try decode("POST", headers: ["Content-Type": "text/plain"], bodyLength: 5))
        #expect(op.contentType == ContentType("text/plain"))
        #expect(op.seq == nil)
        #expect(op.closed == false)
        #expect(op.producer == nil)
    }

    @Test func emptyBodyWithoutStreamClosedIsABadRequest() {
        #expect(decodeError("POST", headers: ["Content-Type": "text/plain"], bodyLength: 0)?.status == .badRequest)
        #expect(decodeError("POST", bodyLength: 0)?.status == .badRequest)
        #expect(decodeError("POST", headers: ["Stream-Closed": "false"], bodyLength: 0)?.status == .badRequest)
    }

    @Test func emptyBodyWithProducerHeadersButNoCloseIsABadRequest() {
        let headers = ["Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"]
        #expect(decodeError("POST", headers: headers, bodyLength: 0)?.status == .badRequest)
    }

    @Test func closeOnlyNeedsNoContentType() throws {
        let op = try append(try decode("POST", headers: ["Stream-Closed": "true"], bodyLength: 0))
        #expect(op.closed)
        #expect(op.contentType == nil)
    }

    @Test func closeOnlyIgnoresAnyContentType() throws {
        let op = try append(try decode("POST", headers: ["Stream-Closed": "true", "Content-Type": "not a type"], bodyLength: 0))
        #expect(op.closed)
        #expect(op.contentType == nil)
    }

    @Test func appendAndClose() throws {
        let op = try append(try decode("POST", headers: ["Stream-Closed": "TRUE", "Content-Type": "text/plain"], bodyLength: 3))
        #expect(op.closed)
        #expect(op.contentType == ContentType("text/plain"))
    }

    @Test func bodyWithoutContentTypeIsABadRequest() {
        #expect(decodeError("POST", bodyLength: 1)?.status == .badRequest)
        #expect(decodeError("POST", headers: ["Stream-Closed": "true"], bodyLength: 1)?.status == .badRequest)
    }

    @Test func bodyWithMalformedContentTypeIsABadRequest() {
        #expect(decodeError("POST", headers: ["Content-Type": "plain"], bodyLength: 1)?.status == .badRequest)
    }

    @Test func streamSeq() throws {
        let op = try append(try decode("POST", headers: ["Content-Type": "text/plain", "stream-seq": "0042"], bodyLength: 1))
        #expect(op.seq == "0042")
    }

    @Test func emptyStreamSeqIsABadRequest() {
        #expect(decodeError("POST", headers: ["Content-Type": "text/plain", "Stream-Seq": ""], bodyLength: 1)?.status == .badRequest)
    }

    @Test func producerHeaders() throws {
        let headers = ["Content-Type": "application/json", "Producer-Id": "writer", "Producer-Epoch": "2", "Producer-Seq": "9"]
        let op = try append(try decode("POST", headers: headers, bodyLength: 2))
        #expect(op.producer == ProducerClaim(id: "writer", epoch: 2, seq: 9))
    }

    @Test(arguments: [
        ["Producer-Id": "p"], ["Producer-Epoch": "0"], ["Producer-Seq": "0"],
        ["Producer-Id": "p", "Producer-Epoch": "0"], ["Producer-Id": "p", "Producer-Seq": "0"],
        ["Producer-Epoch": "0", "Producer-Seq": "0"],
        ["Producer-Id": "", "Producer-Epoch": "0", "Producer-Seq": "0"],
        ["Producer-Id": "p", "Producer-Epoch": "1abc", "Producer-Seq": "0"],
        ["Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "-1"],
        ["Producer-Id": "p", "Producer-Epoch": "9007199254740992", "Producer-Seq": "0"],
    ])
    func badProducerHeadersAreABadRequest(producer: [String: String]) {
        let headers = producer.merging(["Content-Type": "text/plain"]) { a, _ in a }
        #expect(decodeError("POST", headers: headers, bodyLength: 1)?.status == .badRequest)
    }

    @Test func producerHeadersOnCloseOnly() throws {
        let headers = ["Stream-Closed": "true", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "1"]
        let op = try append(try decode("POST", headers: headers, bodyLength: 0))
        #expect(op.closed)
        #expect(op.producer == ProducerClaim(id: "p", epoch: 0, seq: 1))
    }
}

@Suite("Decoding GET (reads)")
struct DecodeReadTests {
    @Test func noQueryIsACatchUpFromTheBeginning() throws {
        let op = try read(try decode("GET"))
        #expect(op.start == .beginning)
        #expect(op.mode == .catchUp)
        #expect(op.ifNoneMatch == nil)
        #expect(!op.mode.isLive)
        #expect(op.mode.cursor == nil)
    }

    @Test func offsets() throws {
        #expect(try read(try decode("GET", query: "offset=-1")).start == .beginning)
        #expect(try read(try decode("GET", query: "offset=now")).start == .now)
        #expect(try read(try decode("GET", query: "offset=0000000000000000_0000000000000010")).start
            == .offset(StreamOffset(position: 10)))
        // Percent-encoded offsets are decoded first.
        #expect(try read(try decode("GET", query: "offset=0000000000000000%5F0000000000000010")).start
            == .offset(StreamOffset(position: 10)))
        #expect(try read(try decode("GET", query: "offset=%2D1")).start == .beginning)
    }

    @Test(arguments: ["offset=", "offset=0,1", "offset=0%201", "offset=0%2C1", "offset=..%2F", "offset=%00",
                      "offset=0%0A", "offset=0%0D%0A", "offset=abc", "offset=9999999999999999_9999999999999999"])
    func malformedOffsetIsABadRequest(query: String) {
        #expect(decodeError("GET", query: query)?.status == .badRequest)
    }

    @Test(arguments: ["offset=a&offset=b", "offset=-1&offset=-1", "offset=now&offset=-1", "offset=-1&of%66set=now"])
    func repeatedOffsetIsABadRequest(query: String) {
        #expect(decodeError("GET", query: query)?.status == .badRequest)
    }

    @Test func repeatedLiveOrCursorIsABadRequest() {
        #expect(decodeError("GET", query: "offset=-1&live=sse&live=sse")?.status == .badRequest)
        #expect(decodeError("GET", query: "offset=-1&live=long-poll&cursor=1&cursor=2")?.status == .badRequest)
    }

    @Test func longPoll() throws {
        let op = try read(try decode("GET", query: "offset=now&live=long-poll"))
        #expect(op.start == .now)
        #expect(op.mode == .longPoll(cursor: nil))
        #expect(op.mode.isLive)
        let withCursor = try read(try decode("GET", query: "cursor=123&live=long-poll&offset=-1"))
        #expect(withCursor.mode == .longPoll(cursor: "123"))
        #expect(withCursor.mode.cursor == "123")
    }

    @Test func sse() throws {
        let op = try read(try decode("GET", query: "offset=-1&live=sse&cursor=77"))
        #expect(op.mode == .sse(cursor: "77"))
        #expect(op.mode.isLive)
        #expect(op.mode.cursor == "77")
    }

    @Test(arguments: ["offset=-1&live=foo", "offset=-1&live=", "offset=-1&live=SSE", "offset=-1&live=longpoll",
                      "offset=-1&live=true", "offset=-1&live"])
    func unknownLiveModeIsABadRequest(query: String) {
        #expect(decodeError("GET", query: query)?.status == .badRequest)
    }

    @Test(arguments: ["live=long-poll", "live=sse", "live=sse&cursor=5"])
    func liveWithoutOffsetIsABadRequest(query: String) {
        #expect(decodeError("GET", query: query)?.status == .badRequest)
    }

    @Test func cursorWithoutLiveIsACatchUp() throws {
        let op = try read(try decode("GET", query: "offset=-1&cursor=5"))
        #expect(op.mode == .catchUp)
        #expect(op.mode.cursor == nil)
    }

    @Test func unknownParametersAreIgnored() throws {
        let op = try read(try decode("GET", query: "foo=bar&baz=qux&foo=again"))
        #expect(op.start == .beginning)
        #expect(op.mode == .catchUp)
    }

    @Test func malformedQueryIsABadRequest() {
        #expect(decodeError("GET", query: "offset=%zz")?.status == .badRequest)
        #expect(decodeError("GET", query: "foo=%")?.status == .badRequest)
    }

    @Test func ifNoneMatchIsPassedThrough() throws {
        let op = try read(try decode("GET", query: "offset=-1", headers: ["if-none-match": "\"abc\""]))
        #expect(op.ifNoneMatch == "\"abc\"")
    }
}

@Suite("Decoding HEAD, DELETE and other methods")
struct DecodeOtherMethodTests {
    @Test func head() throws {
        guard case .head = try decode("HEAD", query: "offset=garbage") else {
            Issue.record("expected .head")
            return
        }
    }

    @Test func delete() throws {
        guard case .delete = try decode("DELETE") else {
            Issue.record("expected .delete")
            return
        }
    }

    @Test(arguments: ["PATCH", "TRACE", "CONNECT", "BREW", "get", "Post", ""])
    func unsupportedMethodsAre405WithAllow(method: String) throws {
        let error = try #require(decodeError(method))
        #expect(error.status == .methodNotAllowed)
        let allow = error.headers.first { $0.0.lowercased() == "allow" }?.1
        #expect(allow == StreamOperation.allowedMethods)
        for verb in ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"] {
            #expect(allow?.contains(verb) == true)
        }
    }
}
