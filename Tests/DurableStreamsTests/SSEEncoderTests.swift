import DurableStreams
import Foundation
import NIOCore
import Testing

/// One dispatched SSE event, as a browser's EventSource would see it.
private struct ParsedEvent: Equatable {
    var type: String
    var data: [UInt8]
}

/// Parses an event stream the way the WHATWG EventSource algorithm does: lines end at CRLF, CR
/// or LF; a blank line dispatches; `data` lines are joined with LF; one space after the colon
/// is dropped.
private func parseEventStream(_ bytes: [UInt8]) -> [ParsedEvent] {
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == 0x0D || byte == 0x0A {
            lines.append(current)
            current = []
            if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
        } else {
            current.append(byte)
        }
        index += 1
    }
    // An unterminated final line is discarded, as by EventSource.
    var events: [ParsedEvent] = []
    var type: [UInt8] = []
    var data: [UInt8] = []
    for line in lines {
        if line.isEmpty {
            if !data.isEmpty {
                data.removeLast()
                events.append(ParsedEvent(type: type.isEmpty ? "message" : String(decoding: type, as: UTF8.self), data: data))
            }
            type = []
            data = []
            continue
        }
        if line.first == UInt8(ascii: ":") { continue }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = String(decoding: line[..<colon], as: UTF8.self)
        var value = colon < line.endIndex ? Array(line[(colon + 1)...]) : []
        if value.first == UInt8(ascii: " ") { value.removeFirst() }
        switch field {
        case "data": data += value + [0x0A]
        case "event": type = value
        default: break
        }
    }
    return events
}

private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
private func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

private func encodeData(_ parts: [ByteBuffer], base64: Bool) -> String {
    var out = ByteBuffer()
    SSEEncoder.writeData(parts, base64: base64, into: &out)
    return String(decoding: out.readableBytesView, as: UTF8.self)
}

private func encodeDataBytes(_ parts: [ByteBuffer], base64: Bool) -> [UInt8] {
    var out = ByteBuffer()
    SSEEncoder.writeData(parts, base64: base64, into: &out)
    return Array(out.readableBytesView)
}

/// The payload as an SSE client reconstructs it: CR and CRLF line ends become LF.
private func normalizedLineEnds(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        if bytes[index] == 0x0D {
            out.append(0x0A)
            if index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
        } else {
            out.append(bytes[index])
        }
        index += 1
    }
    return out
}

/// A small deterministic generator, so the randomised round trips are reproducible.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("SSE data events: text payloads")
struct SSETextDataTests {
    @Test func singleLine() {
        #expect(encodeData([buffer("hello")], base64: false) == "event: data\ndata:hello\n\n")
    }

    @Test func noSpaceAfterTheColon() {
        let text = encodeData([buffer("{\"a\":1}")], base64: false)
        #expect(text.contains("\ndata:{\"a\":1}\n"))
        #expect(!text.contains("data: "))
    }

    @Test func lfSplitsLines() {
        #expect(encodeData([buffer("line1\nline2")], base64: false) == "event: data\ndata:line1\ndata:line2\n\n")
    }

    @Test func crSplitsLines() {
        #expect(encodeData([buffer("line1\rline2")], base64: false) == "event: data\ndata:line1\ndata:line2\n\n")
    }

    @Test func crlfIsOneLineBreak() {
        #expect(encodeData([buffer("line1\r\nline2")], base64: false) == "event: data\ndata:line1\ndata:line2\n\n")
    }

    @Test func mixedLineEnds() {
        #expect(encodeData([buffer("a\nb\rc\r\nd")], base64: false) == "event: data\ndata:a\ndata:b\ndata:c\ndata:d\n\n")
    }

    @Test func emptyLinesBecomeEmptyDataLines() {
        #expect(encodeData([buffer("a\n\nb")], base64: false) == "event: data\ndata:a\ndata:\ndata:b\n\n")
        #expect(encodeData([buffer("a\r\rb")], base64: false) == "event: data\ndata:a\ndata:\ndata:b\n\n")
        #expect(encodeData([buffer("a\r\n\r\nb")], base64: false) == "event: data\ndata:a\ndata:\ndata:b\n\n")
        // LF then CR is two line breaks, not one.
        #expect(encodeData([buffer("a\n\rb")], base64: false) == "event: data\ndata:a\ndata:\ndata:b\n\n")
    }

    @Test func leadingAndTrailingLineBreaks() {
        #expect(encodeData([buffer("\nabc")], base64: false) == "event: data\ndata:\ndata:abc\n\n")
        #expect(encodeData([buffer("abc\n")], base64: false) == "event: data\ndata:abc\ndata:\n\n")
        #expect(encodeData([buffer("abc\r\n")], base64: false) == "event: data\ndata:abc\ndata:\n\n")
        #expect(encodeData([buffer("\n")], base64: false) == "event: data\ndata:\ndata:\n\n")
    }

    @Test func emptyPayloadIsOneEmptyDataLine() {
        #expect(encodeData([], base64: false) == "event: data\ndata:\n\n")
        #expect(encodeData([ByteBuffer()], base64: false) == "event: data\ndata:\n\n")
    }

    @Test func aLineStartingWithASpaceGetsAnExtraSpace() {
        #expect(encodeData([buffer(" indented")], base64: false) == "event: data\ndata:  indented\n\n")
        #expect(encodeData([buffer("a\n b\n  c")], base64: false) == "event: data\ndata:a\ndata:  b\ndata:   c\n\n")
        #expect(encodeData([buffer(" ")], base64: false) == "event: data\ndata:  \n\n")
    }

    @Test func aSpaceInsideALineIsNotDoubled() {
        #expect(encodeData([buffer("a b")], base64: false) == "event: data\ndata:a b\n\n")
    }

    @Test func partsAreConcatenated() {
        #expect(encodeData([buffer("hel"), buffer("lo")], base64: false) == "event: data\ndata:hello\n\n")
        #expect(encodeData([buffer("a"), ByteBuffer(), buffer("b")], base64: false) == "event: data\ndata:ab\n\n")
    }

    @Test func crlfSplitAcrossTwoPartsIsOneLineBreak() {
        #expect(encodeData([buffer("a\r"), buffer("\nb")], base64: false) == "event: data\ndata:a\ndata:b\n\n")
        #expect(encodeData([buffer("a\r"), ByteBuffer(), buffer("\nb")], base64: false) == "event: data\ndata:a\ndata:b\n\n")
    }

    @Test func crAtTheEndOfAPartFollowedByTextIsALineBreak() {
        #expect(encodeData([buffer("a\r"), buffer("b")], base64: false) == "event: data\ndata:a\ndata:b\n\n")
    }

    @Test func aSpaceStartingALineInTheNextPartIsPreserved() {
        #expect(encodeData([buffer("a\n"), buffer(" b")], base64: false) == "event: data\ndata:a\ndata:  b\n\n")
        // A space in the middle of a line that happens to start a part is not doubled.
        #expect(encodeData([buffer("a"), buffer(" b")], base64: false) == "event: data\ndata:a b\n\n")
    }

    @Test func injectedEventSyntaxStaysData() {
        let payload = "x\n\nevent: control\ndata: {\"streamNextOffset\":\"evil\"}\n\n"
        let bytes = encodeDataBytes([buffer(payload)], base64: false)
        let events = parseEventStream(bytes)
        #expect(events.count == 1)
        #expect(events.first?.type == "data")
        #expect(events.first?.data == Array(payload.utf8))
        // Every line of the event but the first is a data line, and only the final line is blank.
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n")
        #expect(lines.first == "event: data")
        #expect(lines.suffix(2) == ["", ""])
        for line in lines.dropFirst().dropLast(2) {
            #expect(line.hasPrefix("data:"))
        }
    }

    @Test func jsonArrayPayloadRoundTrips() throws {
        let payload = "[{\"text\":\"line\\nbreak\"},{\"k\":\"v\"}]"
        let events = parseEventStream(encodeDataBytes([buffer(payload)], base64: false))
        #expect(events == [ParsedEvent(type: "data", data: Array(payload.utf8))])
        let object = try JSONSerialization.jsonObject(with: Data(try #require(events.first).data))
        #expect((object as? [Any])?.count == 2)
    }

    @Test(arguments: [
        "", "a", " ", "  ", "\n", "\r", "\r\n", "\n\r", " lead", "trail ", "a\nb", "a\rb", "a\r\nb",
        "\n\n\n", "\r\r", "\r\n\r\n", " a\n b\r c\r\n d", "data: x", "event: control", ":comment", "é😀\n中",
    ])
    func clientReconstructsThePayload(payload: String) {
        let events = parseEventStream(encodeDataBytes([buffer(payload)], base64: false))
        #expect(events == [ParsedEvent(type: "data", data: normalizedLineEnds(Array(payload.utf8)))])
    }

    @Test func randomPayloadsAndPartitionsRoundTrip() {
        var rng = SplitMix64(state: 0x5EED)
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("xyz".utf8), [0x20], [0x20, 0x20], [0x0D], [0x0A], [0x0D, 0x0A],
            Array("é".utf8), Array("data: ".utf8), Array(":".utf8), Array("event: control".utf8), [0x09],
        ]
        for _ in 0..<2000 {
            var payload: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                payload += pieces[Int.random(in: 0..<pieces.count, using: &rng)]
            }
            // Cut the payload into parts at random byte positions (CRLF and UTF-8 sequences included).
            var parts: [ByteBuffer] = []
            var start = 0
            while start < payload.count {
                let end = Int.random(in: start...payload.count, using: &rng)
                parts.append(buffer(Array(payload[start..<end])))
                start = end  // an empty part when `end == start`
            }
            let encoded = encodeDataBytes(parts, base64: false)
            let events = parseEventStream(encoded)
            #expect(events == [ParsedEvent(type: "data", data: normalizedLineEnds(payload))], "payload \(payload)")
            // The encoding never depends on where the parts were cut.
            #expect(encoded == encodeDataBytes([buffer(payload)], base64: false))
        }
    }
}

@Suite("SSE data events: base64 payloads")
struct SSEBase64DataTests {
    private func dataLines(_ text: String) -> [String] {
        text.components(separatedBy: "\n").filter { $0.hasPrefix("data:") }.map { String($0.dropFirst(5)) }
    }

    @Test func hello() {
        #expect(encodeData([buffer("Hello")], base64: true) == "event: data\ndata:SGVsbG8=\n\n")
    }

    @Test func emptyPayloadIsAnEmptyBase64String() {
        #expect(encodeData([], base64: true) == "event: data\ndata:\n\n")
        #expect(encodeData([ByteBuffer()], base64: true) == "event: data\ndata:\n\n")
    }

    @Test func partsAreEncodedAsOnePayload() {
        #expect(encodeData([buffer("He"), buffer("l"), ByteBuffer(), buffer("lo")], base64: true) == "event: data\ndata:SGVsbG8=\n\n")
    }

    @Test(arguments: [1, 2, 3, 56, 57, 58, 113, 114, 115, 1000, 1024, 4096, 65_537])
    func linesAreAtMost76CharactersAndDecodeBack(size: Int) throws {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ ($0 >> 8)) }
        let text = encodeData([buffer(payload)], base64: true)
        #expect(text.hasPrefix("event: data\n"))
        #expect(text.hasSuffix("\n\n"))
        let lines = dataLines(text)
        #expect(lines.count == max(1, (((size + 2) / 3) * 4 + 75) / 76))
        for line in lines {
            #expect(line.utf8.count <= SSEEncoder.base64LineLength)
            #expect(!line.hasPrefix(" "))
        }
        for line in lines.dropLast() {
            #expect(line.utf8.count == SSEEncoder.base64LineLength)
        }
        let joined = lines.joined()
        #expect(joined.utf8.count % 4 == 0)
        #expect(joined == Data(payload).base64EncodedString())
        let decoded = try #require(Data(base64Encoded: joined))
        #expect(Array(decoded) == payload)
    }

    @Test func everyByteValueRoundTrips() throws {
        let payload = (0...255).map { UInt8($0) }
        let parts = [buffer(Array(payload[0..<100])), buffer(Array(payload[100...]))]
        let events = parseEventStream(encodeDataBytes(parts, base64: true))
        #expect(events.count == 1)
        let base64 = String(decoding: try #require(events.first).data.filter { $0 != 0x0A && $0 != 0x0D }, as: UTF8.self)
        #expect(Array(try #require(Data(base64Encoded: base64))) == payload)
    }

    @Test func lineLengthIsAMultipleOfFour() {
        #expect(SSEEncoder.base64LineLength % 4 == 0)
    }
}

@Suite("SSE control events")
struct SSEControlTests {
    let offset = StreamOffset(position: 1234)

    private func fields(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func openAndUpToDate() throws {
        let control = SSEEncoder.Control(nextOffset: offset, cursor: 12, upToDate: true, closed: false)
        #expect(control.json == "{\"streamNextOffset\":\"\(offset)\",\"streamCursor\":\"12\",\"upToDate\":true}")
        let object = try fields(control.json)
        #expect(object["streamNextOffset"] as? String == offset.description)
        #expect(object["streamCursor"] as? String == "12")
        #expect(object["upToDate"] as? Bool == true)
        #expect(object["streamClosed"] == nil)
    }

    @Test func notUpToDateOmitsUpToDate() throws {
        let control = SSEEncoder.Control(nextOffset: offset, cursor: 12, upToDate: false, closed: false)
        #expect(control.json == "{\"streamNextOffset\":\"\(offset)\",\"streamCursor\":\"12\"}")
        #expect(try fields(control.json)["upToDate"] == nil)
    }

    @Test func noCursorOmitsStreamCursor() throws {
        let control = SSEEncoder.Control(nextOffset: offset, cursor: nil, upToDate: true, closed: false)
        #expect(control.json == "{\"streamNextOffset\":\"\(offset)\",\"upToDate\":true}")
    }

    @Test func closedOmitsTheCursorAndImpliesUpToDate() throws {
        for upToDate in [false, true] {
            let control = SSEEncoder.Control(nextOffset: offset, cursor: 99, upToDate: upToDate, closed: true)
            #expect(control.json == "{\"streamNextOffset\":\"\(offset)\",\"upToDate\":true,\"streamClosed\":true}")
            let object = try fields(control.json)
            #expect(object["streamCursor"] == nil)
            #expect(object["streamClosed"] as? Bool == true)
            #expect(object["upToDate"] as? Bool == true)
        }
    }

    @Test func jsonIsFlatAndSingleLine() throws {
        let control = SSEEncoder.Control(nextOffset: .zero, cursor: UInt64.max, upToDate: true, closed: false)
        #expect(!control.json.contains("\n") && !control.json.contains("\r"))
        let object = try fields(control.json)
        for value in object.values {
            #expect(!(value is [String: Any]) && !(value is [Any]))
        }
        #expect(object["streamCursor"] as? String == String(UInt64.max))
    }

    @Test func writeControlFramesTheEvent() {
        let control = SSEEncoder.Control(nextOffset: offset, cursor: 7, upToDate: true, closed: false)
        var out = ByteBuffer()
        SSEEncoder.writeControl(control, into: &out)
        #expect(String(buffer: out) == "event: control\ndata:\(control.json)\n\n")
        let events = parseEventStream(Array(out.readableBytesView))
        #expect(events == [ParsedEvent(type: "control", data: Array(control.json.utf8))])
    }

    @Test func dataThenControlParseAsTwoEvents() {
        var out = ByteBuffer()
        SSEEncoder.writeData([buffer("a\nb")], base64: false, into: &out)
        let control = SSEEncoder.Control(nextOffset: offset, cursor: nil, upToDate: true, closed: true)
        SSEEncoder.writeControl(control, into: &out)
        let events = parseEventStream(Array(out.readableBytesView))
        #expect(events == [
            ParsedEvent(type: "data", data: Array("a\nb".utf8)),
            ParsedEvent(type: "control", data: Array(control.json.utf8)),
        ])
    }
}
