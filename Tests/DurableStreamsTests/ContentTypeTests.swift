import DurableStreams
import Testing

@Suite("Content-Type matching")
struct ContentTypeTests {
    @Test func mediaTypeIsLowercasedWithoutParameters() throws {
        let type = try #require(ContentType("Text/Plain; charset=UTF-8"))
        #expect(type.mediaType == "text/plain")
        #expect(type.headerValue == "Text/Plain; charset=UTF-8")
        #expect(type.description == "Text/Plain; charset=UTF-8")
    }

    @Test func headerValueIsTrimmed() throws {
        let type = try #require(ContentType("  application/json ;charset=utf-8\t"))
        #expect(type.headerValue == "application/json ;charset=utf-8")
        #expect(type.mediaType == "application/json")
    }

    @Test func equalityIgnoresCaseAndParameters() throws {
        let plain = try #require(ContentType("application/json"))
        #expect(plain == ContentType("APPLICATION/JSON"))
        #expect(plain == ContentType("application/json; charset=utf-8"))
        #expect(plain == ContentType("Application/Json;charset=UTF-8;x=y"))
        #expect(plain != ContentType("text/plain"))
        #expect(plain != ContentType("application/json-seq"))
        #expect(ContentType("TEXT/PLAIN") != nil)
        #expect(ContentType("TEXT/PLAIN") == ContentType("text/plain"))
    }

    @Test func hashingAgreesWithEquality() throws {
        let set: Set<ContentType> = [
            try #require(ContentType("application/json")),
            try #require(ContentType("APPLICATION/JSON; charset=utf-8")),
            try #require(ContentType("text/plain")),
        ]
        #expect(set.count == 2)
        #expect(set.contains(try #require(ContentType("Text/Plain; charset=ascii"))))
    }

    @Test(arguments: ["", " ", "json", "/json", "application/", "/", "a/b/c", "text /plain", "text/ plain",
                      "tëxt/plain", "text/pl\u{7F}ain", "text/pl\u{1}ain", ";charset=utf-8", "text\\plain"])
    func malformedValuesAreRejected(value: String) {
        #expect(ContentType(value) == nil)
    }

    @Test func octetStreamIsTheDefault() {
        #expect(ContentType.octetStream.mediaType == "application/octet-stream")
        #expect(ContentType.octetStream.headerValue == "application/octet-stream")
        #expect(!ContentType.octetStream.isJSON)
        #expect(!ContentType.octetStream.isTextual)
    }

    @Test(arguments: ["application/json", "APPLICATION/JSON", "application/json; charset=utf-8", "Application/Json;x=y"])
    func jsonMode(value: String) throws {
        let type = try #require(ContentType(value))
        #expect(type.isJSON)
        #expect(type.isTextual)
    }

    @Test(arguments: ["application/ndjson", "application/json-patch+json", "application/ld+json", "text/json",
                      "application/jsonx", "application/x-json"])
    func notJSONMode(value: String) throws {
        #expect(try #require(ContentType(value)).isJSON == false)
    }

    @Test(arguments: ["text/plain", "TEXT/PLAIN", "text/html; charset=utf-8", "text/csv", "text/event-stream", "application/json"])
    func textualTypes(value: String) throws {
        #expect(try #require(ContentType(value)).isTextual)
    }

    @Test(arguments: ["application/octet-stream", "application/x-protobuf", "image/png", "application/ndjson",
                      "application/xml", "texts/plain", "application/text"])
    func binaryTypes(value: String) throws {
        #expect(try #require(ContentType(value)).isTextual == false)
    }
}
