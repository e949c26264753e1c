import Foundation
import Testing

@Suite("JSON mode (§9.1)")
struct JSONModeTests {
    func json(_ response: TestResponseAlias) throws -> [Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed]) as? [Any])
    }

    @Test func flattensOneLevelAndReadsAnArray() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json")
            try await origin.append(path, #"{"event":"created"}"#, type: "application/json")
            try await origin.append(path, #"[{"a":1}, {"b":2}]"#, type: "application/json")
            try await origin.append(path, "[[1,2],[3,4]]", type: "application/json")
            try await origin.append(path, "[[[1,2,3]]]", type: "application/json")
            let read = try await origin.request(.GET, path)
            #expect(read.header("Content-Type") == "application/json")
            #expect(read.text == #"[{"event":"created"},{"a":1},{"b":2},[1,2],[3,4],[[1,2,3]]]"#)
        }
    }

    @Test func emptyArrayPostIs400ButPutCreatesEmptyStream() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json", body: "[]")
            #expect(try await origin.request(.GET, path).text == "[]")
            let post = try await origin.request(.POST, path, headers: [("Content-Type", "application/json")], text: "[]")
            #expect(post.status == 400)
        }
    }

    @Test(arguments: ["{ invalid json }", "[1,]", "\"unterminated", "01", "{\"a\":1} trailing", "[1] [2]"])
    func invalidJSONIs400(body: String) async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json")
            let response = try await origin.request(.POST, path, headers: [("Content-Type", "application/json")], text: body)
            #expect(response.status == 400)
            #expect(try await origin.request(.GET, path).text == "[]")
        }
    }

    @Test func scalarsAreSingleMessages() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json; charset=utf-8", body: "42")
            for value in ["\"s\"", "true", "null"] { try await origin.append(path, value, type: "application/json") }
            #expect(try await origin.request(.GET, path).text == #"[42,"s",true,null]"#)
        }
    }

    @Test func offsetNowOnJSONIsEmptyArray() async throws {
        try await withOrigin { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json", body: "[1,2]")
            let response = try await origin.request(.GET, "\(path)?offset=now")
            #expect(response.text == "[]")
            #expect(response.header("Content-Type") == "application/json")
        }
    }

    /// Chunking never splits a message: each chunk is a valid array and together they hold all.
    @Test func chunksEndOnMessageBoundaries() async throws {
        try await withOrigin(configure: { $0.maxChunkBytes = 25 }) { (origin: Origin) async throws in
            let path = Origin.uniquePath()
            try await origin.create(path, type: "application/json")
            let messages = (0..<40).map { #"{"n":\#($0),"pad":"xxxxxxxx"}"# }
            try await origin.append(path, "[" + messages.joined(separator: ",") + "]", type: "application/json")
            var collected: [String] = []
            var next = "-1"
            for _ in 0..<100 {
                let response = try await origin.request(.GET, "\(path)?offset=\(next)")
                let array = try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]])
                #expect(array.count >= 1)
                collected += array.map { "\($0["n"]!)" }
                next = response.header("Stream-Next-Offset")!
                if response.header("Stream-Up-To-Date") == "true" { break }
            }
            #expect(collected == (0..<40).map(String.init))
        }
    }
}

import TestSupport
typealias TestResponseAlias = TestResponse
