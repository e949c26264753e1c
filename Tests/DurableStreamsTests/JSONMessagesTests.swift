import DurableStreams
import Testing

/// Splits `bytes` and returns each message's exact bytes.
private func split(_ bytes: [UInt8]) throws(JSONMessages.Failure) -> [[UInt8]] {
    let result: Result<[Range<Int>], JSONMessages.Failure> = bytes.withUnsafeBytes { raw in
        Result { () throws(JSONMessages.Failure) in try JSONMessages.split(raw) }
    }
    return try result.get().map { Array(bytes[$0]) }
}

private func split(_ text: String) throws(JSONMessages.Failure) -> [String] {
    try split(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
}

private func failure(_ bytes: [UInt8]) -> JSONMessages.Failure? {
    do {
        _ = try split(bytes)
        return nil
    } catch {
        return error
    }
}

private func failure(_ text: String) -> JSONMessages.Failure? { failure(Array(text.utf8)) }

private func isInvalid(_ failure: JSONMessages.Failure?) -> Bool {
    if case .invalid = failure { return true }
    return false
}

private func validate(_ text: String) throws(JSONMessages.Failure) {
    let bytes = Array(text.utf8)
    let result: Result<Void, JSONMessages.Failure> = bytes.withUnsafeBytes { raw in
        Result { () throws(JSONMessages.Failure) in try JSONMessages.validate(raw) }
    }
    try result.get()
}

@Suite("JSON mode framing (§9.1)")
struct JSONMessagesTests {
    // MARK: Single values

    @Test(arguments: [
        "{\"a\":1}", "{}", "{\"nested\":{\"b\":[1,2,{\"c\":null}]}}", "\"string\"", "\"\"", "42", "-0", "0",
        "3.25", "-1.5e+10", "1E-5", "2e5", "123456789012345678901234567890", "true", "false", "null",
    ])
    func aNonArrayBodyIsOneMessage(text: String) throws {
        #expect(try split(text) == [text])
    }

    @Test func surroundingWhitespaceIsNotPartOfTheMessage() throws {
        #expect(try split("  {\"a\":1}\n") == ["{\"a\":1}"])
        #expect(try split("\t\r\n 7 \r\n") == ["7"])
    }

    @Test func messageBytesAreKeptExactly() throws {
        // Whitespace inside a value, number spelling and key order are preserved.
        let text = "{ \"b\" : 1.50 ,\n \"a\":[ 1e2 ] }"
        #expect(try split(text) == [text])
    }

    // MARK: Arrays

    @Test func aTopLevelArrayIsFlattenedOneLevel() throws {
        #expect(try split("[1,2,3]") == ["1", "2", "3"])
        #expect(try split("[{\"a\":1},{\"b\":2},{\"c\":3},{\"d\":4}]") == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"])
        #expect(try split("[\"x\",true,null,-1.5]") == ["\"x\"", "true", "null", "-1.5"])
    }

    @Test func nestedArraysAreFlattenedOnlyOnce() throws {
        #expect(try split("[[1,2],[3,4]]") == ["[1,2]", "[3,4]"])
        #expect(try split("[[[1,2,3]]]") == ["[[1,2,3]]"])
        #expect(try split("[[]]") == ["[]"])
        #expect(try split("[[],[]]") == ["[]", "[]"])
        #expect(try split("[{}]") == ["{}"])
    }

    @Test func whitespaceAroundArrayElementsIsNotPartOfTheMessages() throws {
        #expect(try split(" [ {\"a\":1} ,\n\t{\"b\":2}\r\n ] ") == ["{\"a\":1}", "{\"b\":2}"])
        #expect(try split("[ [ 1 , 2 ] ]") == ["[ 1 , 2 ]"])
    }

    @Test func commasAndBracketsInsideStringsDoNotSplit() throws {
        #expect(try split("[\"a,b\",\"]\",\"[\"]") == ["\"a,b\"", "\"]\"", "\"[\""])
        #expect(try split("[\"\\\"],[\"]") == ["\"\\\"],[\""])
    }

    @Test(arguments: ["[]", " [ ] ", "\n[\t]\n", "[\r\n]"])
    func anEmptyTopLevelArrayIsReportedSeparately(text: String) {
        #expect(failure(text) == .emptyArray)
    }

    @Test func anEmptyArrayFollowedByGarbageIsInvalidNotEmpty() {
        #expect(isInvalid(failure("[]x")))
        #expect(isInvalid(failure("[] []")))
        #expect(isInvalid(failure("[],")))
    }

    // MARK: Strings

    @Test func validEscapesAndUnicode() throws {
        let text = #""a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00\u0000""#
        #expect(try split(text) == [text])
        let unicode = "\"héllo 😀 中文 \u{10FFFF}\""
        #expect(try split(unicode) == [unicode])
    }

    // MARK: Invalid JSON

    @Test(arguments: ["", " ", "\n\t\r "])
    func emptyOrBlankBodiesAreInvalid(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: ["[1,2,]", "[1,]", "{\"a\":1,}", "[[1,],2]", "[,1]", "[,]", "{,}", "[1,,2]"])
    func trailingAndMisplacedCommas(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: ["[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{a:1}", "{'a':1}", "['a']", "{\"a\":}",
                      "{1:2}", "{\"a\"}", "{:1}", "[1:2]", "{\"a\":1]", "[1}"])
    func structuralErrors(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: [#""\x""#, #""\'""#, #""\u12""#, #""\u12G4""#, #""\uZZZZ""#, #""\U0041""#, #""\"#, #""\u"#, #""\ ""#])
    func badEscapes(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: [UInt8(0x00), 0x01, 0x09, 0x0A, 0x0D, 0x1F])
    func rawControlCharactersInStrings(byte: UInt8) {
        #expect(isInvalid(failure([UInt8(ascii: "\""), UInt8(ascii: "a"), byte, UInt8(ascii: "b"), UInt8(ascii: "\"")])))
    }

    @Test func delAndHighCharactersInStringsAreFine() throws {
        #expect(try split("\"a\u{7F}b\"") == ["\"a\u{7F}b\""])
    }

    @Test(arguments: ["01", "-01", "00", "1.", "-1.", "1.e5", ".5", "-", "+1", "1e", "1e+", "1E-", "--1", "0x10",
                      "NaN", "Infinity", "-Infinity", "1.5.2", "1e5.5", "[01]", "[1.]", "{\"a\":01}", "- 1"])
    func badNumbers(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: ["tru", "True", "TRUE", "nul", "NULL", "fals", "falsey", "nulll", "truefalse", "undefined", "[tru]"])
    func badLiterals(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],                     // never valid in UTF-8
        [0x22, 0xFE, 0x22],
        [0x22, 0x80, 0x22],                     // lone continuation byte
        [0x22, 0xC0, 0x80, 0x22],               // overlong NUL
        [0x22, 0xC1, 0xBF, 0x22],               // overlong ASCII
        [0x22, 0xE0, 0x80, 0x80, 0x22],         // overlong three-byte form
        [0x22, 0xF0, 0x80, 0x80, 0x80, 0x22],   // overlong four-byte form
        [0x22, 0xED, 0xA0, 0x80, 0x22],         // UTF-16 surrogate
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],   // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
        [0x22, 0xC3, 0x22],                     // truncated two-byte sequence
        [0x22, 0xE2, 0x82, 0x22],               // truncated three-byte sequence
        [0x22, 0xE2, 0x82],                     // truncated at the end of the body
        [0x22, 0xC3],
        [0x22, 0xC3, 0x28, 0x22],               // bad continuation byte
        [0x22, 0xE2, 0x28, 0xA1, 0x22],
        [0x22, 0xF0, 0x90, 0x28, 0xBC, 0x22],
        [0xFF],                                 // invalid byte outside a string
        [0x5B, 0x31, 0x2C, 0xC3, 0xA9, 0x5D],   // non-ASCII outside a string: [1,é]
    ] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) {
        #expect(isInvalid(failure(bytes)))
    }

    @Test func validMultiByteUTF8AtEveryLength() throws {
        let bytes: [UInt8] = [0x22, 0x41, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xEF, 0xBF, 0xBF, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]
        #expect(try split(bytes) == [bytes])
    }

    @Test(arguments: ["{\"a\":1", "[1,2", "[1,2,", "\"abc", "{", "[", "{\"a\"", "{\"a\":", "[{\"a\":1}", "[[1,2]", "[\"a", "{\"a\":[1"])
    func unterminated(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: ["{} {}", "1 2", "\"a\"b", "{}x", "[1]]", "[1],[2]", "null null", "true,", "{\"a\":1}}", "[1] x", "1/"])
    func trailingGarbage(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test(arguments: ["\u{0C}1", "1\u{0C}", "\u{A0}1", "[1,\u{0B}2]"])
    func onlyJSONWhitespaceIsSkipped(text: String) {
        #expect(isInvalid(failure(text)))
    }

    @Test func failurePositionsPointAtTheProblem() {
        #expect(failure("{\"a\":1}x") == .invalid(at: 7, "unexpected data after the JSON value"))
        if case .invalid(let at, _) = failure("[1,2,]") { #expect(at == 5) } else { Issue.record("expected .invalid") }
        if case .invalid(let at, _) = failure("  \"a\u{1}\"") { #expect(at == 4) } else { Issue.record("expected .invalid") }
        if case .invalid(let at, _) = failure("[1,2") { #expect(at == 4) } else { Issue.record("expected .invalid") }
    }

    @Test
    func aBadSeparatorIsReportedAtItsOwnPosition() {
        // `[1,01]`: the stray `1` is byte 4; `{"a":1 "b":2}`: the `"` after the space is byte 7.
        if case .invalid(let at, _) = failure("[1,01]") { #expect(at == 4) } else { Issue.record("expected .invalid") }
        if case .invalid(let at, _) = failure("{\"a\":1 \"b\":2}") { #expect(at == 7) } else { Issue.record("expected .invalid") }
    }

    // MARK: Nesting

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSONMessages.maxDepth
        // A top-level array holding one element nested `depth - 1` more levels deep.
        let text = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        let messages = try split(text)
        #expect(messages.count == 1)
        #expect(messages.first?.utf8.count == text.utf8.count - 2)
        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(try split(objects) == [objects])
    }

    @Test func nestingBeyondTheLimitIsRejected() {
        let depth = JSONMessages.maxDepth + 1
        let arrays = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        #expect(isInvalid(failure(arrays)))
        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(isInvalid(failure(objects)))
    }

    @Test func excessiveNestingIsRejectedWithoutExhaustingTheStack() {
        let deep = 200_000
        #expect(isInvalid(failure(String(repeating: "[", count: deep))))
        #expect(isInvalid(failure(String(repeating: "[", count: deep) + String(repeating: "]", count: deep))))
        #expect(isInvalid(failure(String(repeating: "{\"a\":", count: deep))))
        #expect(isInvalid(failure("{\"a\":" + String(repeating: "[", count: deep))))
    }

    // MARK: validate

    @Test func validateAcceptsAnyCompleteJSONText() throws {
        try validate("[]")
        try validate(" {\"a\":[1,2,3]} ")
        try validate("\"s\"")
        try validate("[[1],[2]]")
    }

    @Test(arguments: ["", " ", "[1,]", "{} {}", "01", "[", "\"\\x\""])
    func validateRejectsInvalidJSON(text: String) {
        #expect(throws: JSONMessages.Failure.self) { try validate(text) }
    }
}
