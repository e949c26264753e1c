import Testing
import DurableStreams

@Suite("StreamOffset wire format and ordering")
struct StreamOffsetTests {
    static let interestingPositions: [UInt64] = [
        0, 1, 2, 9, 10, 11, 99, 100, 255, 256, 999, 1000, 1023, 1024, 65_535, 65_536,
        1_048_575, 1_048_576, 999_999_999, 1_000_000_000, 4_294_967_295, 4_294_967_296,
        123_456_789_012_345, 999_999_999_999_999, 1_000_000_000_000_000,
        StreamOffset.maxPosition - 1, StreamOffset.maxPosition,
    ]

    @Test func zeroIsAllZeroDigits() {
        #expect(StreamOffset.zero.description == "0000000000000000_0000000000000000")
        #expect(StreamOffset.zero.position == 0)
    }

    @Test func descriptionIsZeroPaddedFixedWidth() {
        #expect(StreamOffset(position: 42).description == "0000000000000000_0000000000000042")
        #expect(StreamOffset(position: 1_048_576).description == "0000000000000000_0000000001048576")
        #expect(StreamOffset(position: StreamOffset.maxPosition).description == "0000000000000000_9999999999999999")
    }

    @Test(arguments: interestingPositions)
    func descriptionHasTheFixedShape(position: UInt64) {
        let text = StreamOffset(position: position).description
        let bytes = Array(text.utf8)
        #expect(bytes.count == 2 * StreamOffset.fieldWidth + 1)
        #expect(bytes[StreamOffset.fieldWidth] == UInt8(ascii: "_"))
        for (index, byte) in bytes.enumerated() where index != StreamOffset.fieldWidth {
            #expect(byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        }
        // The generation field is always zero today.
        #expect(text.hasPrefix("0000000000000000_"))
        // Never mistakable for a sentinel, and free of the characters §8 forbids.
        #expect(text != "-1" && text != "now")
        #expect(!text.contains(",") && !text.contains("&") && !text.contains("=") && !text.contains("?") && !text.contains("/"))
    }

    @Test(arguments: interestingPositions)
    func parseRoundTrips(position: UInt64) throws {
        let offset = StreamOffset(position: position)
        let parsed = try #require(StreamOffset(offset.description))
        #expect(parsed == offset)
        #expect(parsed.position == position)
        let fromSubstring = try #require(StreamOffset(Substring(offset.description)))
        #expect(fromSubstring == offset)
    }

    @Test func parsesASubstringSlicedOutOfALargerString() throws {
        let text = "offset=0000000000000000_0000000000000042&live=sse"
        let start = text.index(text.startIndex, offsetBy: 7)
        let end = text.index(start, offsetBy: 33)
        let offset = try #require(StreamOffset(text[start..<end]))
        #expect(offset.position == 42)
    }

    @Test func lexicographicOrderOfTheWireFormEqualsNumericOrder() {
        let positions = Self.interestingPositions
        for a in positions {
            for b in positions {
                let lhs = StreamOffset(position: a), rhs = StreamOffset(position: b)
                let bytewise = lhs.description.utf8.lexicographicallyPrecedes(rhs.description.utf8)
                #expect(bytewise == (a < b), "\(a) vs \(b)")
                #expect((lhs.description < rhs.description) == (a < b), "\(a) vs \(b)")
                #expect((lhs < rhs) == (a < b))
                #expect((lhs == rhs) == (a == b))
            }
        }
    }

    @Test func comparableUsesNumericNotDecimalStringOrder() {
        // As naive strings "9" > "10"; offsets must order 9 before 10.
        #expect(StreamOffset(position: 9) < StreamOffset(position: 10))
        #expect([StreamOffset(position: 100), .zero, StreamOffset(position: 20)].sorted().map(\.position) == [0, 20, 100])
    }

    @Test(arguments: [
        "",
        "0",
        "-1",
        "now",
        "42",
        // one digit short / long in either field
        "000000000000000_0000000000000000",
        "0000000000000000_000000000000000",
        "00000000000000000_0000000000000000",
        "0000000000000000_00000000000000000",
        // separator missing, moved or different
        "00000000000000000000000000000000",
        "000000000000000000000000000000000",
        "0000000000000000-0000000000000000",
        "0000000000000000.0000000000000000",
        "000000000000000_00000000000000000",
        "00000000000000000_000000000000000",
        "0000000000000000__000000000000000",
        // non-digits
        "000000000000000a_0000000000000000",
        "0000000000000000_000000000000000a",
        "0000000000000000_00000000000000 1",
        " 000000000000000_0000000000000000",
        "0000000000000000_000000000000000 ",
        "+000000000000000_0000000000000000",
        "0000000000000000_-000000000000001",
        "0000000000000000_0x00000000000001",
        "0000000000000000_0000000000,00001",
        "0000000000000000_00000000000000/1",
        "0000000000000000_00000000000000\n1",
        "0000000000000000_00000000000000\u{0}1",
        "0000000000000000_000000000000000\u{FF11}", // full-width digit one
        // a non-zero generation field
        "0000000000000001_0000000000000000",
        "1000000000000000_0000000000000000",
        "9999999999999999_9999999999999999",
    ])
    func parseRejectsMalformedInput(text: String) {
        #expect(StreamOffset(text) == nil)
        #expect(StreamOffset(Substring(text)) == nil)
    }
}

@Suite("ReadStart from the offset query parameter")
struct ReadStartTests {
    @Test func absentOffsetMeansBeginning() throws {
        #expect(try ReadStart(queryValue: nil) == .beginning)
    }

    @Test func minusOneMeansBeginning() throws {
        #expect(try ReadStart(queryValue: "-1") == .beginning)
    }

    @Test func nowMeansTail() throws {
        #expect(try ReadStart(queryValue: "now") == .now)
    }

    @Test func concreteOffsetIsParsed() throws {
        #expect(try ReadStart(queryValue: "0000000000000000_0000000000000007") == .offset(StreamOffset(position: 7)))
        #expect(try ReadStart(queryValue: "0000000000000000_0000000000000000") == .offset(.zero))
    }

    @Test(arguments: [
        "", "-2", "-0", "0", "1", "NOW", "Now", "now ", " now", "-1 ", "latest",
        "0,1", "0 1", "../", "/..", "a/b", "0000000000000000_000000000000000\n",
        "0000000000000001_0000000000000000", "9999999999999999_9999999999999999",
    ])
    func malformedValuesAreBadRequests(value: String) {
        let error = #expect(throws: ProtocolError.self) { try ReadStart(queryValue: Substring(value)) }
        #expect(error?.status == .badRequest)
    }
}
