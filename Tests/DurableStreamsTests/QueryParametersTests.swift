import DurableStreams
import Testing

@Suite("Query string parsing")
struct QueryParametersTests {
    @Test func simplePairs() throws {
        let query = try QueryParameters(query: "offset=-1&live=long-poll&cursor=12")
        #expect(query["offset"] == "-1")
        #expect(query["live"] == "long-poll")
        #expect(query["cursor"] == "12")
        #expect(query["missing"] == nil)
    }

    @Test func percentDecodingOfValuesAndNames() throws {
        let query = try QueryParameters(query: "a=x%20y&of%66set=0000000000000000_0000000000000001&c=%2F%2f%3D%26")
        #expect(query["a"] == "x y")
        #expect(query["offset"] == "0000000000000000_0000000000000001")
        #expect(query["c"] == "//=&")
    }

    @Test func plusIsASpaceAndEncodedPlusIsAPlus() throws {
        let query = try QueryParameters(query: "q=a+b&r=a%2Bb&s=+")
        #expect(query["q"] == "a b")
        #expect(query["r"] == "a+b")
        #expect(query["s"] == " ")
    }

    @Test func multiByteUTF8IsDecoded() throws {
        #expect(try QueryParameters(query: "name=%C3%A9%E2%82%AC")["name"] == "é€")
    }

    @Test func emptyAndValuelessParameters() throws {
        let query = try QueryParameters(query: "flag&empty=&=orphan&a=1=2")
        #expect(query["flag"] == "")
        #expect(query["empty"] == "")
        #expect(query[""] == "orphan")
        #expect(query["a"] == "1=2")
    }

    @Test func emptySegmentsAreIgnored() throws {
        let query = try QueryParameters(query: "&&a=1&&b=2&")
        #expect(query["a"] == "1")
        #expect(query["b"] == "2")
        #expect(!query.isRepeated(""))
        let empty = try QueryParameters(query: "")
        #expect(empty["a"] == nil)
    }

    @Test func namesAreCaseSensitive() throws {
        let query = try QueryParameters(query: "Offset=1")
        #expect(query["offset"] == nil)
        #expect(query["Offset"] == "1")
    }

    @Test func repeatedParametersAreDetectedAndTheFirstValueWins() throws {
        let query = try QueryParameters(query: "a=1&b=2&a=3")
        #expect(query["a"] == "1")
        #expect(query.isRepeated("a"))
        #expect(!query.isRepeated("b"))
        #expect(!query.isRepeated("c"))
    }

    @Test func repetitionIsDetectedAfterDecoding() throws {
        let query = try QueryParameters(query: "offset=1&of%66set=2")
        #expect(query.isRepeated("offset"))
        #expect(try QueryParameters(query: "a=1&a=1").isRepeated("a"))
        #expect(try QueryParameters(query: "a&a").isRepeated("a"))
    }

    @Test(arguments: ["%", "a=%", "a=%2", "a=%zz", "a=%G0", "a=%0G", "a%=1", "a=1&b=%", "a=%%41", "a=% 1"])
    func malformedEscapesAreABadRequest(query: String) {
        let error = #expect(throws: ProtocolError.self) { try QueryParameters(query: Substring(query)) }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["a=%e9", "a=%FF", "a=%C3", "a=%C0%80", "a=%ED%A0%80", "%80=1"])
    func escapesDecodingToInvalidUTF8AreABadRequest(query: String) {
        let error = #expect(throws: ProtocolError.self) { try QueryParameters(query: Substring(query)) }
        #expect(error?.status == .badRequest)
    }

    @Test func percentDecode() {
        #expect(QueryParameters.percentDecode("plain") == "plain")
        #expect(QueryParameters.percentDecode("") == "")
        #expect(QueryParameters.percentDecode("a%2Fb") == "a/b")
        #expect(QueryParameters.percentDecode("a%2fb") == "a/b")
        #expect(QueryParameters.percentDecode("%41%42%43") == "ABC")
        #expect(QueryParameters.percentDecode("a+b") == "a b")
        #expect(QueryParameters.percentDecode("%00") == "\u{0}")
        #expect(QueryParameters.percentDecode("100%") == nil)
        #expect(QueryParameters.percentDecode("%4") == nil)
        #expect(QueryParameters.percentDecode("%FF") == nil)
    }

    @Test func percentDecodeWorksOnSubstrings() {
        let text = "xx%41yy"
        let inner = text.dropFirst(2).dropLast(2)
        #expect(QueryParameters.percentDecode(inner) == "A")
    }
}
