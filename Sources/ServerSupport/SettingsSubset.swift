/// The part of TOML our settings files use: one `key = value` per line, where a value is a
/// single-line string, an integer, a float, a boolean or a one-line list of strings, `#` comments, and `[[name]]` headers
/// (an array of tables with a bare name, such as `edge.conf`'s `[[route]]`).
///
/// Files are checked against it before TOMLKit parses them. The parser inside TOMLKit (toml++)
/// asserts on some malformed input instead of reporting an error, and SwiftPM builds it without
/// `NDEBUG`, so a stray `[/`, a date whose `T` has no time, or a broken date in a value aborted
/// the process (all three found by the `originconf` and `edgeconf` fuzz targets). Screening for
/// each shape in turn lost to the fuzzer; keeping TOMLKit to the plain subset that every setting
/// needs does not. TOMLKit still parses and types the values; this only refuses, line by line,
/// what no setting of ours can be.
enum SettingsSubset {
    /// The first line (0-based) outside the subset and why, or `nil`.
    static func firstProblem(in text: String) -> (line: Int, reason: String)? {
        let bytes = Array(text.utf8)
        for (index, raw) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            var line = raw
            if line.last == 0x0D { line = line.dropLast() }
            if index == 0, line.starts(with: [0xEF, 0xBB, 0xBF]) { line = line.dropFirst(3) }
            if let reason = problem(in: line) { return (index, reason) }
        }
        return nil
    }

    private static func problem(in line: ArraySlice<UInt8>) -> String? {
        var rest = skipBlanks(line)
        if rest.isEmpty || rest.first == UInt8(ascii: "#") { return nil }
        if rest.first == UInt8(ascii: "[") {
            return arrayTableHeader(rest) == nil
                ? "a table is written only as a `[[name]]` header with a plain name (no [table], dotted or quoted names)" : nil
        }
        let keyEnd = rest.firstIndex { !isKeyByte($0) } ?? rest.endIndex
        guard keyEnd > rest.startIndex else {
            return "expected a setting as `key = value` (inline tables, arrays and dotted or quoted keys are not used)"
        }
        rest = skipBlanks(rest[keyEnd...])
        guard rest.first == UInt8(ascii: "=") else { return "expected '=' after the setting's name" }
        rest = skipBlanks(rest.dropFirst())
        guard let afterValue = value(rest) else {
            return "a value must be a one-line \"string\", a number, true, false or a list of \"strings\""
        }
        rest = skipBlanks(afterValue)
        guard rest.isEmpty || rest.first == UInt8(ascii: "#") else { return "unexpected text after the value" }
        if rest.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }) { return "control character in a comment" }
        return nil
    }

    /// The name of a `[[name]]` header (blanks allowed around the name, a comment after it), or
    /// `nil` if `line` is not one. The name is bare key characters only: toml++ asserts on some
    /// malformed header names (`[/`), so nothing else reaches it.
    static func arrayTableHeader(_ line: ArraySlice<UInt8>) -> String? {
        var rest = skipBlanks(line)
        guard rest.starts(with: "[[".utf8) else { return nil }
        rest = skipBlanks(rest.dropFirst(2))
        let nameEnd = rest.firstIndex { !isKeyByte($0) } ?? rest.endIndex
        guard nameEnd > rest.startIndex else { return nil }
        let name = rest[..<nameEnd]
        rest = skipBlanks(rest[nameEnd...])
        guard rest.starts(with: "]]".utf8) else { return nil }
        rest = skipBlanks(rest.dropFirst(2))
        guard rest.isEmpty || rest.first == UInt8(ascii: "#") else { return nil }
        if rest.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }) { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    /// The header name of one line of a file as `ConfigurationFile` keeps it (a trailing `\r`
    /// and, on the first line, a byte order mark allowed).
    static func arrayTableHeader(line: Substring) -> String? {
        var bytes = ArraySlice(line.utf8)
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        return arrayTableHeader(bytes)
    }

    /// What follows a one-line list of "strings" (`["a", "b"]`, a trailing comma allowed;
    /// `peers` in edge.conf), given the text after its `[`, or `nil`.
    private static func stringList(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var rest = skipBlanks(text)
        while rest.first == UInt8(ascii: "\"") {
            guard let after = basicString(rest.dropFirst()) else { return nil }
            rest = skipBlanks(after)
            guard rest.first == UInt8(ascii: ",") else { break }
            rest = skipBlanks(rest.dropFirst())
        }
        guard rest.first == UInt8(ascii: "]") else { return nil }
        return rest.dropFirst()
    }

    /// What follows a value that is in the subset, or `nil`.
    private static func value(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let first = text.first else { return nil }
        switch first {
        case UInt8(ascii: "\""): return basicString(text.dropFirst())
        case UInt8(ascii: "["): return stringList(text.dropFirst())
        case UInt8(ascii: "'"):
            let body = text.dropFirst()
            guard let close = body.firstIndex(of: UInt8(ascii: "'")),
                !body[..<close].contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F })
            else { return nil }
            return body[(close + 1)...]
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            for word in ["true", "false"] where text.starts(with: word.utf8) {
                let after = text.dropFirst(word.utf8.count)
                return after.first.map(isKeyByte) == true ? nil : after
            }
            return nil
        default: return number(text)
        }
    }

    /// `"…"` with the escapes TOML allows; `text` starts after the opening quote.
    private static func basicString(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            switch byte {
            case UInt8(ascii: "\""): return text[(index + 1)...]
            case UInt8(ascii: "\\"):
                guard index + 1 < text.endIndex else { return nil }
                let escape = text[index + 1]
                let hexDigits: Int
                switch escape {
                case UInt8(ascii: "u"): hexDigits = 4
                case UInt8(ascii: "U"): hexDigits = 8
                default:
                    guard "\"\\bfnrt".utf8.contains(escape) else { return nil }
                    hexDigits = 0
                }
                let end = index + 2 + hexDigits
                guard end <= text.endIndex, text[(index + 2)..<end].allSatisfy(isHexByte) else { return nil }
                index = end
            default:
                guard byte >= 0x20 || byte == 0x09, byte != 0x7F else { return nil }
                index += 1
            }
        }
        return nil
    }

    /// `[+-]digits[.digits][(e|E)[+-]digits]`, underscores only between digits.
    private static func number(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var rest = text
        if rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
        guard let afterInteger = digits(rest) else { return nil }
        rest = afterInteger
        if rest.first == UInt8(ascii: ".") {
            guard let afterFraction = digits(rest.dropFirst()) else { return nil }
            rest = afterFraction
        }
        if rest.first == UInt8(ascii: "e") || rest.first == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") { rest = rest.dropFirst() }
            guard let afterExponent = digits(rest) else { return nil }
            rest = afterExponent
        }
        // A value runs to blanks, a comment or the end: `1979-05-27` stops here, at the '-'.
        if let next = rest.first, next != 0x20, next != 0x09, next != UInt8(ascii: "#") { return nil }
        return rest
    }

    private static func digits(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let first = text.first, isDigit(first) else { return nil }
        var index = text.startIndex + 1
        while index < text.endIndex {
            if isDigit(text[index]) {
                index += 1
            } else if text[index] == UInt8(ascii: "_"), index + 1 < text.endIndex, isDigit(text[index + 1]) {
                index += 2
            } else {
                break
            }
        }
        return text[index...]
    }

    private static func skipBlanks(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        text.drop { $0 == 0x20 || $0 == 0x09 }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private static func isHexByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }
}
