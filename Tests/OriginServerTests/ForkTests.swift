import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// The offset of byte `position` of a stream, as the server spells it.
private func at(_ position: Int) -> String {
    let digits = String(position)
    return "0000000000000000_" + String(repeating: "0", count: 16 - digits.count) + digits
}

private let forkHeaderNames = ["Stream-Forked-From", "Stream-Fork-Offset", "Stream-Fork-Sub-Offset"]

extension Origin {
    /// A fork `PUT` as sent, without checking the answer.
    func forkRequest(
        _ fork: String, from source: String, offset: String? = nil, subOffset: String? = nil, type: String? = nil,
        headers: [(String, String)] = [], body: String? = nil
    ) async throws -> TestResponse {
        var all: [(String, String)] = [("Stream-Forked-From", source)]
        if let offset { all.append(("Stream-Fork-Offset", offset)) }
        if let subOffset { all.append(("Stream-Fork-Sub-Offset", subOffset)) }
        if let type { all.append(("Content-Type", type)) }
        return try await request(.PUT, fork, headers: all + headers, body: body.map { Array($0.utf8) })
    }

    /// Forks `source` into `fork` and checks it was created.
    @discardableResult
    func makeFork(
        _ fork: String, from source: String, offset: String? = nil, subOffset: String? = nil, type: String? = nil,
        headers: [(String, String)] = [], body: String? = nil
    ) async throws -> TestResponse {
        let response = try await forkRequest(fork, from: source, offset: offset, subOffset: subOffset, type: type, headers: headers, body: body)
        #expect(response.status == 201, "fork \(fork) of \(source): \(response.status) \(response.text)")
        return response
    }
}

@Suite("Forks: creation (§4.2)")
struct ForkCreationTests {
    // A new fork is 201 with an absolute Location and the fork's own tail.
    @Test func createdForkIs201WithLocationAndItsTail() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "hello")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.makeFork(fork, from: source, offset: at(3))
            #expect(response.header("Location")?.hasPrefix("http://") == true)
            #expect(response.header("Location")?.hasSuffix(fork) == true)
            #expect(response.header("Stream-Next-Offset") == at(3))
            #expect(try await origin.request(.HEAD, fork).status == 200)
        }
    }

    // Without a fork offset the fork is made at the source's tail at that moment.
    @Test func omittedOffsetForksAtTheSourceTail() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.append(source, "def")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.makeFork(fork, from: source)
            #expect(response.header("Stream-Next-Offset") == at(6))
            #expect(try await origin.readAll(fork).text == "abcdef")
        }
    }

    // A fork offset inside the source inherits only the bytes before it.
    @Test func forkAtAnEarlierOffsetInheritsOnlyThePrefix() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.append(source, "def")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(3))
            let read = try await origin.request(.GET, fork)
            #expect(read.text == "abc")
            #expect(read.header("Stream-Next-Offset") == at(3))
            #expect(read.header("Stream-Up-To-Date") == "true")
        }
    }

    // A fork made at offset zero inherits nothing and starts empty.
    @Test func forkAtOffsetZeroIsEmpty() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.makeFork(fork, from: source, offset: at(0))
            #expect(response.header("Stream-Next-Offset") == at(0))
            try await origin.append(fork, "own")
            #expect(try await origin.readAll(fork).text == "own")
        }
    }

    // The fork takes the source's Content-Type when the PUT names none.
    @Test func contentTypeIsInheritedWhenOmitted() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "text/csv", body: "a,b\n")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.makeFork(fork, from: source)
            #expect(response.header("Content-Type") == "text/csv")
            #expect(try await origin.request(.HEAD, fork).header("Content-Type") == "text/csv")
            #expect(try await origin.request(.GET, fork).header("Content-Type") == "text/csv")
        }
    }

    // Naming the source's own type is accepted; naming another type is a conflict that creates nothing.
    @Test func aDifferentContentTypeIs409() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let other = Origin.uniquePath("fork")
            let mismatch = try await origin.forkRequest(other, from: source, type: "application/json")
            #expect(mismatch.status == 409)
            #expect(try await origin.request(.HEAD, other).status == 404)
            let same = Origin.uniquePath("fork")
            try await origin.makeFork(same, from: source, type: "text/plain")
        }
    }

    // Sending the same fork PUT again is 200 and changes nothing.
    @Test func anIdenticalRepeatIs200() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abcdef")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(2), subOffset: "1")
            try await origin.append(fork, "X")
            let again = try await origin.forkRequest(fork, from: source, offset: at(2), subOffset: "1")
            #expect(again.status == 200)
            #expect(again.header("Stream-Next-Offset") == at(4))
            #expect(try await origin.readAll(fork).text == "abcX")
            // With no offset named, a repeat is identical while the source's tail has not moved.
            let atTail = Origin.uniquePath("fork")
            try await origin.makeFork(atTail, from: source)
            #expect(try await origin.forkRequest(atTail, from: source).status == 200)
        }
    }

    // A PUT at an existing fork's name that asks for another fork (or no fork) is a conflict.
    @Test func aDifferentRepeatIs409() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abcdef")
            let otherSource = Origin.uniquePath("src")
            try await origin.create(otherSource, body: "abcdef")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(2))
            #expect(try await origin.forkRequest(fork, from: source, offset: at(3)).status == 409)
            #expect(try await origin.forkRequest(fork, from: source, offset: at(2), subOffset: "1").status == 409)
            #expect(try await origin.forkRequest(fork, from: otherSource, offset: at(2)).status == 409)
            #expect(try await origin.request(.PUT, fork, headers: [("Content-Type", "text/plain")]).status == 409)
            // A plain stream's name is not turned into a fork either.
            #expect(try await origin.forkRequest(otherSource, from: source, offset: at(2)).status == 409)
            #expect(try await origin.readAll(fork).text == "ab")
            #expect(try await origin.readAll(otherSource).text == "abcdef")
        }
    }

    // A fork of a stream that does not exist is 404 and creates nothing.
    @Test func aMissingSourceIs404() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let fork = Origin.uniquePath("fork")
            let response = try await origin.forkRequest(fork, from: Origin.uniquePath("nothing"))
            #expect(response.status == 404)
            #expect(try await origin.request(.HEAD, fork).status == 404)
            // A path outside the stream routes names no stream either.
            #expect(try await origin.forkRequest(fork, from: "/elsewhere/x").status == 404)
            #expect(try await origin.forkRequest(fork, from: Origin.uniquePath("nothing"), body: "with a body").status == 404)
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    // A fork offset past the source's tail is 400.
    @Test func anOffsetBeyondTheSourceTailIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            #expect(try await origin.forkRequest(fork, from: source, offset: at(4)).status == 400)
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    // Fork headers that are malformed on their own are 400 and create nothing.
    @Test(arguments: [
        [("Stream-Fork-Offset", "abc")],
        [("Stream-Fork-Offset", "0000000000000000_000000000000000x")],
        [("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "-1")],
        [("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "01")],
        [("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "+1")],
        [("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "one")],
        [("Stream-Fork-Offset", "0000000000000000_0000000000000000"), ("Stream-Fork-Sub-Offset", "")],
    ])
    func malformedForkValuesAre400(extra: [(String, String)]) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.request(.PUT, fork, headers: [("Stream-Forked-From", source)] + extra)
            #expect(response.status == 400, "\(extra): \(response.status) \(response.text)")
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    // A source named by something that is not a plain absolute path is 400.
    @Test(arguments: ["relative/path", "/v1/stream/../stream/x", "/v1/stream/a?offset=-1"])
    func malformedSourcePathsAre400(sourcePath: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let fork = Origin.uniquePath("fork")
            let response = try await origin.request(.PUT, fork, headers: [("Stream-Forked-From", sourcePath)])
            #expect(response.status == 400)
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    // A sub-offset that reaches past the source's data is 400; one ending exactly at the tail is fine.
    @Test func aSubOffsetPastTheDataIs400() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let tooFar = Origin.uniquePath("fork")
            #expect(try await origin.forkRequest(tooFar, from: source, offset: at(1), subOffset: "3").status == 400)
            #expect(try await origin.request(.HEAD, tooFar).status == 404)
            let exact = Origin.uniquePath("fork")
            let response = try await origin.makeFork(exact, from: source, offset: at(1), subOffset: "2")
            #expect(response.header("Stream-Next-Offset") == at(3))

            let json = Origin.uniquePath("json")
            try await origin.create(json, type: "application/json", body: "[1,2]")
            let tooManyMessages = Origin.uniquePath("fork")
            #expect(try await origin.forkRequest(tooManyMessages, from: json, offset: at(0), subOffset: "3").status == 400)
            #expect(try await origin.request(.HEAD, tooManyMessages).status == 404)
        }
    }

    // Forks are transparent: no answer about a fork names its source or fork point.
    @Test func responsesNeverCarryForkHeaders() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            var responses = [try await origin.makeFork(fork, from: source, offset: at(2), subOffset: "1")]
            responses.append(try await origin.forkRequest(fork, from: source, offset: at(2), subOffset: "1"))
            responses.append(try await origin.request(.POST, fork, headers: [("Content-Type", "text/plain")], text: "d"))
            responses.append(try await origin.request(.GET, fork))
            responses.append(try await origin.request(.GET, "\(fork)?offset=\(at(1))"))
            responses.append(try await origin.request(.GET, "\(fork)?offset=-1&live=long-poll"))
            responses.append(try await origin.request(.HEAD, fork))
            responses.append(try await origin.request(.GET, source))
            for response in responses {
                for name in forkHeaderNames {
                    #expect(response.header(name) == nil, "\(name) in a \(response.status) answer")
                }
            }
        }
    }

    // A byte-stream fork with a sub-offset inherits that many bytes past the offset, then its body.
    @Test func byteForkWithSubOffsetAndInitialBody() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "application/octet-stream", body: "abcdef")
            let fork = Origin.uniquePath("fork")
            let response = try await origin.makeFork(fork, from: source, offset: at(2), subOffset: "2", body: "XY")
            #expect(response.header("Stream-Next-Offset") == at(6))
            #expect(try await origin.readAll(fork).text == "abcdXY")
            #expect(try await origin.request(.GET, "\(fork)?offset=\(at(4))").text == "XY")
            #expect(try await origin.readAll(source).text == "abcdef")
        }
    }

    // A JSON fork's body without Content-Type is framed as JSON messages, after the inherited ones.
    @Test func jsonForkInitialBodyIsFramedAsMessages() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "application/json", body: #"[{"n":1},{"n":2},{"n":3}]"#)
            let fork = Origin.uniquePath("fork")
            // Sub-offset 2 on a JSON stream: two whole messages past offset zero.
            try await origin.makeFork(fork, from: source, offset: at(0), subOffset: "2", body: #"[{"x":true},"y"]"#)
            let read = try await origin.request(.GET, fork)
            #expect(read.header("Content-Type") == "application/json")
            #expect(read.text == #"[{"n":1},{"n":2},{"x":true},"y"]"#)
        }
    }

    // A fork of a JSON source refuses an initial body that is not JSON, as the source would.
    @Test func jsonForkRejectsAnInvalidInitialBody() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "application/json", body: "[1]")
            let fork = Origin.uniquePath("fork")
            #expect(try await origin.forkRequest(fork, from: source, body: "{ not json").status == 400)
            #expect(try await origin.request(.HEAD, fork).status == 404)
        }
    }

    // A closed source can be forked; the fork is open and takes appends.
    @Test func aClosedSourceCanBeForkedAndTheForkIsOpen() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc", headers: [("Stream-Closed", "true")])
            let fork = Origin.uniquePath("fork")
            let created = try await origin.makeFork(fork, from: source)
            #expect(created.header("Stream-Closed") == nil)
            #expect(try await origin.request(.HEAD, fork).header("Stream-Closed") == nil)
            let read = try await origin.request(.GET, fork)
            #expect(read.text == "abc")
            #expect(read.header("Stream-Closed") == nil)
            try await origin.append(fork, "d")
            #expect(try await origin.readAll(fork).text == "abcd")
            // The source stays closed.
            #expect(try await origin.request(.POST, source, headers: [("Content-Type", "text/plain")], text: "x").status == 409)
        }
    }

    // Asking for a closed fork makes one closed from the start.
    @Test func aForkCanBeCreatedClosed() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            let created = try await origin.makeFork(fork, from: source, headers: [("Stream-Closed", "true")], body: "d")
            #expect(created.header("Stream-Closed") == "true")
            let read = try await origin.request(.GET, fork)
            #expect(read.text == "abcd")
            #expect(read.header("Stream-Closed") == "true")
            try await origin.append(source, "e")
            #expect(try await origin.readAll(source).text == "abce")
        }
    }
}

@Suite("Forks: reads (§4.2)")
struct ForkReadTests {
    // A fork shares its source's offsets: any offset the fork returned resumes the read there.
    @Test func offsetsAreTheSourcesAcrossTheForkPoint() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source)
            let afterA = try await origin.append(source, "aaa")
            let afterB = try await origin.append(source, "bbb")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let afterC = try await origin.append(fork, "ccc")
            #expect(afterC == at(9))
            #expect(try await origin.request(.GET, "\(fork)?offset=\(afterA)").text == "bbbccc")
            #expect(try await origin.request(.GET, "\(fork)?offset=\(afterB)").text == "ccc")
            let tail = try await origin.request(.GET, "\(fork)?offset=\(afterC)")
            #expect(tail.body.isEmpty)
            #expect(tail.header("Stream-Next-Offset") == afterC)
            #expect(tail.header("Stream-Up-To-Date") == "true")
            #expect(try await origin.request(.GET, "\(fork)?offset=\(at(10))").status == 400)
        }
    }

    // What the source appends after the fork is never read through the fork, and vice versa.
    @Test func laterSourceAppendsNeverAppearInTheFork() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            try await origin.append(source, "XYZ")
            try await origin.append(fork, "123")
            try await origin.append(source, "UVW")
            #expect(try await origin.readAll(fork).text == "abc123")
            #expect(try await origin.request(.GET, "\(fork)?offset=\(at(3))").text == "123")
            #expect(try await origin.readAll(source).text == "abcXYZUVW")
            #expect(try await origin.request(.GET, "\(source)?offset=\(at(3))").text == "XYZUVW")
        }
    }

    // Reads in small chunks cross from the inherited bytes into the fork's own without loss.
    @Test func chunkedReadsCrossTheForkPoint() async throws {
        try await withOrigin(configure: { $0.maxChunkBytes = 4 }) { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "0123456789")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(7))
            try await origin.append(source, "zzzzzz")
            try await origin.append(fork, "abcdefghij")
            #expect(try await origin.readAll(fork).text == "0123456abcdefghij")
            let first = try await origin.request(.GET, fork)
            #expect(first.body.count <= 4)
            #expect(first.header("Stream-Up-To-Date") == nil)
        }
    }

    // A fork of a fork reads through both: the first source's prefix, the first fork's part, then its own.
    @Test func aForkOfAForkReadsThroughTheChain() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "ab")
            let first = Origin.uniquePath("fork")
            try await origin.makeFork(first, from: source, offset: at(1))
            try await origin.append(first, "c")
            let second = Origin.uniquePath("fork")
            try await origin.makeFork(second, from: first)
            try await origin.append(first, "X")
            try await origin.append(second, "d")
            #expect(try await origin.readAll(second).text == "acd")
            #expect(try await origin.readAll(first).text == "acX")
            #expect(try await origin.readAll(source).text == "ab")
        }
    }

    // JSON reads across the fork point are one array of the inherited and the fork's messages.
    @Test func jsonReadsAcrossTheForkPointAreOneArray() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            let created = try await origin.create(source, type: "application/json", body: #"{"a":1}"#)
            let afterFirst = try #require(created.header("Stream-Next-Offset"))
            try await origin.append(source, #"{"b":2}"#, type: "application/json")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            try await origin.append(source, #"{"z":0}"#, type: "application/json")
            try await origin.append(fork, #"[{"c":3},{"d":4}]"#, type: "application/json")
            let all = try await origin.request(.GET, fork)
            #expect(all.header("Content-Type") == "application/json")
            #expect(all.text == #"[{"a":1},{"b":2},{"c":3},{"d":4}]"#)
            let parsed = try JSONSerialization.jsonObject(with: Data(all.body)) as? [[String: Int]]
            #expect(parsed?.count == 4)
            let resumed = try await origin.request(.GET, "\(fork)?offset=\(afterFirst)")
            // From the end of the first message: the second (inherited), then the fork's.
            #expect(resumed.text == #"[{"b":2},{"c":3},{"d":4}]"#)
        }
    }

    // A JSON fork's sub-offset counts whole messages, wherever the message ends fall.
    @Test func jsonSubOffsetCountsMessagesPastTheOffset() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "application/json")
            let afterFirst = try await origin.append(source, #"{"m":"first"}"#, type: "application/json")
            try await origin.append(source, #"[{"m":"second"},{"m":"third"},{"m":"fourth"}]"#, type: "application/json")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: afterFirst, subOffset: "2")
            try await origin.append(fork, #""own""#, type: "application/json")
            #expect(try await origin.request(.GET, fork).text == #"[{"m":"first"},{"m":"second"},{"m":"third"},"own"]"#)
        }
    }
}

@Suite("Forks: live reads (§4.2, §5.7, §5.8)")
struct ForkLiveReadTests {
    struct Control: Decodable {
        var streamNextOffset: String
        var upToDate: Bool?
        var streamClosed: Bool?
    }

    // A long-poll at a fork's tail waits for the fork's own appends; the source's do not answer it.
    @Test func longPollAtTheForkTailWaitsForTheForksAppendsOnly() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let (connection, poll) = try await origin.parkedLongPoll(fork, offset: at(3))
            try await origin.append(source, "SOURCE")
            try await origin.append(fork, "fork")
            let response = try await poll.get()
            await connection.close()
            #expect(response.status == 200)
            #expect(response.text == "fork")
            #expect(response.header("Stream-Next-Offset") == at(7))
        }
    }

    // A long-poll at a fork's tail that sees only source appends times out with the fork's tail.
    @Test func longPollAtTheForkTailTimesOutOverSourceAppends() async throws {
        // Long enough that a loaded machine still sees the poll parked before it times out.
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(3) }) { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let (connection, poll) = try await origin.parkedLongPoll(fork, offset: at(3))
            try await origin.append(source, "SOURCE")
            let response = try await poll.get()
            await connection.close()
            #expect(response.status == 204)
            #expect(response.body.isEmpty)
            #expect(response.header("Stream-Next-Offset") == at(3))
            #expect(response.header("Stream-Up-To-Date") == "true")
        }
    }

    // A long-poll at an offset in the inherited range has data, so it answers at once.
    @Test func longPollInTheInheritedRangeAnswersAtOnce() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abcdef")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(4))
            for (offset, expected) in [("-1", "abcd"), (at(0), "abcd"), (at(2), "cd")] {
                let response = try await origin.request(.GET, "\(fork)?offset=\(offset)&live=long-poll")
                #expect(response.status == 200)
                #expect(response.text == expected)
                #expect(response.header("Stream-Next-Offset") == at(4))
            }
        }
    }

    // SSE on a fork sends the inherited bytes, then the fork's, and never what the source appends later.
    @Test func sseDeliversInheritedThenOwnDataButNoLaterSourceAppends() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.append(source, "def")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, offset: at(3), body: "123")
            let reader = try await SSEReader.open(port: origin.port, "\(fork)?offset=-1&live=sse")
            var received = ""
            var control: Control?
            while control?.upToDate != true {
                let event = try #require(await reader.next())
                if event.event == "data" {
                    received += event.data
                } else {
                    control = try JSONDecoder().decode(Control.self, from: Data(event.data.utf8))
                }
            }
            #expect(received == "abc123")
            #expect(control?.streamNextOffset == at(6))
            try await origin.append(source, "SOURCE")
            try await origin.append(fork, "456")
            while !received.hasSuffix("456") {
                let event = try #require(await reader.next())
                if event.event == "data" { received += event.data }
            }
            await reader.close()
            #expect(received == "abc123456")
        }
    }

    // SSE on a JSON fork sends arrays whose messages are the inherited ones, then the fork's.
    @Test func sseOnAJSONForkSendsInheritedThenOwnMessages() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, type: "application/json", body: "[1,2]")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, body: "[3]")
            try await origin.append(source, "99", type: "application/json")
            let reader = try await SSEReader.open(port: origin.port, "\(fork)?offset=-1&live=sse")
            var messages: [Int] = []
            var upToDate = false
            while !upToDate {
                let event = try #require(await reader.next())
                if event.event == "data" {
                    messages += try #require(try JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [Int])
                } else {
                    upToDate = try JSONDecoder().decode(Control.self, from: Data(event.data.utf8)).upToDate == true
                }
            }
            await reader.close()
            #expect(messages == [1, 2, 3])
        }
    }
}

@Suite("Forks: deletion and lifetimes (§4.2)")
struct ForkLifetimeTests {
    // Deleting a stream that forks still read soft-deletes it: every direct operation is 410, the forks read on.
    @Test func deletingASourceWithForksSoftDeletesIt() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            try await origin.append(fork, "def")
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await origin.request(.GET, source).status == 410)
            #expect(try await origin.request(.GET, "\(source)?offset=\(at(1))").status == 410)
            #expect(try await origin.request(.HEAD, source).status == 410)
            #expect(try await origin.request(.POST, source, headers: [("Content-Type", "text/plain")], text: "x").status == 410)
            #expect(try await origin.request(.DELETE, source).status == 410)
            #expect(try await origin.readAll(fork).text == "abcdef")
            #expect(try await origin.request(.GET, "\(fork)?offset=\(at(1))").text == "bcdef")
            try await origin.append(fork, "g")
            #expect(try await origin.readAll(fork).text == "abcdefg")
        }
    }

    // A soft-deleted stream is 410 to live reads too.
    @Test func liveReadsOfASoftDeletedStreamAre410() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.makeFork(Origin.uniquePath("fork"), from: source)
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await origin.request(.GET, "\(source)?offset=-1&live=long-poll").status == 410)
            #expect(try await origin.request(.GET, "\(source)?offset=-1&live=sse").status == 410)
        }
    }

    // A long-poll waiting on a stream that gets soft-deleted ends with 410.
    @Test func softDeleteEndsAWaitingLongPollWith410() async throws {
        try await withOrigin(configure: { $0.longPollTimeout = .seconds(30) }) { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.makeFork(Origin.uniquePath("fork"), from: source)
            let (connection, poll) = try await origin.parkedLongPoll(source, offset: at(3))
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await poll.get().status == 410)
            await connection.close()
        }
    }

    // The name of a soft-deleted stream stays taken: a PUT there is a conflict, fork or not.
    @Test func aPutOnASoftDeletedNameIs409() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await origin.request(.PUT, source, headers: [("Content-Type", "text/plain")]).status == 409)
            let other = Origin.uniquePath("other")
            try await origin.create(other, body: "x")
            #expect(try await origin.forkRequest(source, from: other).status == 409)
            #expect(try await origin.request(.GET, source).status == 410)
            #expect(try await origin.readAll(fork).text == "abc")
        }
    }

    // A soft-deleted stream cannot be forked.
    @Test func forkingASoftDeletedSourceIs409() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            try await origin.makeFork(Origin.uniquePath("fork"), from: source)
            #expect(try await origin.request(.DELETE, source).status == 204)
            let late = Origin.uniquePath("late")
            #expect(try await origin.forkRequest(late, from: source).status == 409)
            #expect(try await origin.forkRequest(late, from: source, body: "with a body").status == 409)
            #expect(try await origin.request(.HEAD, late).status == 404)
        }
    }

    // Once the last fork of a soft-deleted stream is deleted, the stream itself goes (404), and its name is free.
    @Test func deletingTheLastForkRemovesTheSoftDeletedSource() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let first = Origin.uniquePath("fork")
            let second = Origin.uniquePath("fork")
            try await origin.makeFork(first, from: source)
            try await origin.makeFork(second, from: source, offset: at(1))
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await origin.request(.DELETE, first).status == 204)
            #expect(try await origin.request(.GET, source).status == 410)
            #expect(try await origin.readAll(second).text == "a")
            #expect(try await origin.request(.DELETE, second).status == 204)
            try await waitUntil { try await origin.request(.HEAD, source).status == 404 }
            #expect(try await origin.request(.GET, source).status == 404)
            #expect(try await origin.request(.GET, second).status == 404)
            try await origin.create(source, body: "new")
            #expect(try await origin.readAll(source).text == "new")
        }
    }

    // Deleting a fork whose source is alive leaves the source as it was.
    @Test func deletingAForkLeavesALiveSourceAlone() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc")
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            #expect(try await origin.request(.DELETE, fork).status == 204)
            #expect(try await origin.request(.GET, fork).status == 404)
            try await origin.append(source, "d")
            #expect(try await origin.readAll(source).text == "abcd")
            // With its only fork gone, deleting the source removes it outright.
            #expect(try await origin.request(.DELETE, source).status == 204)
            #expect(try await origin.request(.GET, source).status == 404)
        }
    }

    // A fork that asks for no TTL takes its source's.
    @Test func aForkInheritsTheSourceTTL() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc", headers: [("Stream-TTL", "3600")])
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let head = try await origin.request(.HEAD, fork)
            #expect(head.header("Stream-TTL") == "3600")
            #expect(head.header("Stream-Expires-At") == nil)
        }
    }

    // A fork that asks for no expiry takes its source's Expires-At.
    @Test func aForkInheritsTheSourceExpiresAt() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc", headers: [("Stream-Expires-At", "2099-01-01T00:00:00Z")])
            let sourceExpiry = try #require(try await origin.request(.HEAD, source).header("Stream-Expires-At"))
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let head = try await origin.request(.HEAD, fork)
            #expect(head.header("Stream-Expires-At") == sourceExpiry)
            #expect(head.header("Stream-TTL") == nil)
        }
    }

    // A fork that names its own TTL keeps it, whatever its source has.
    @Test func aForksOwnTTLIsKept() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source, body: "abc", headers: [("Stream-TTL", "3600")])
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source, headers: [("Stream-TTL", "60")])
            #expect(try await origin.request(.HEAD, fork).header("Stream-TTL") == "60")
            #expect(try await origin.request(.HEAD, source).header("Stream-TTL") == "3600")
            let unlimited = Origin.uniquePath("plain")
            try await origin.create(unlimited, body: "x")
            let forkOfUnlimited = Origin.uniquePath("fork")
            try await origin.makeFork(forkOfUnlimited, from: unlimited)
            let head = try await origin.request(.HEAD, forkOfUnlimited)
            #expect(head.header("Stream-TTL") == nil)
            #expect(head.header("Stream-Expires-At") == nil)
        }
    }

    // A producer's sequence on the source is not carried into the fork: it starts fresh there.
    @Test func producerStateIsNotInherited() async throws {
        try await withOrigin { (origin: Origin) async throws in
            func producer(_ seq: Int) -> [(String, String)] {
                [("Content-Type", "text/plain"), ("Producer-Id", "p"), ("Producer-Epoch", "0"), ("Producer-Seq", String(seq))]
            }
            let source = Origin.uniquePath("src")
            try await origin.create(source)
            for seq in 0...2 {
                #expect(try await origin.request(.POST, source, headers: producer(seq), text: "\(seq)").status == 200)
            }
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            // On the source, seq 0 is a retry (204); on the fork, it is new data (200).
            #expect(try await origin.request(.POST, source, headers: producer(0), text: "again").status == 204)
            let first = try await origin.request(.POST, fork, headers: producer(0), text: "f0")
            #expect(first.status == 200)
            #expect(first.header("Producer-Seq") == "0")
            // And seq 3, next on the source, is a gap on the fork.
            #expect(try await origin.request(.POST, fork, headers: producer(3), text: "f3").status == 409)
            #expect(try await origin.readAll(fork).text == "012f0")
        }
    }

    // The source's last Stream-Seq does not bind the fork's appends.
    @Test func streamSeqIsNotInherited() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let source = Origin.uniquePath("src")
            try await origin.create(source)
            try await origin.append(source, "a", headers: [("Stream-Seq", "500")])
            let fork = Origin.uniquePath("fork")
            try await origin.makeFork(fork, from: source)
            let lower = try await origin.request(.POST, fork, headers: [("Content-Type", "text/plain"), ("Stream-Seq", "001")], text: "b")
            #expect(lower.status == 204)
            #expect(try await origin.request(.POST, source, headers: [("Content-Type", "text/plain"), ("Stream-Seq", "001")], text: "x").status == 409)
            // The fork keeps a sequence of its own from then on.
            #expect(try await origin.request(.POST, fork, headers: [("Content-Type", "text/plain"), ("Stream-Seq", "001")], text: "c").status == 409)
            #expect(try await origin.readAll(fork).text == "ab")
        }
    }
}
