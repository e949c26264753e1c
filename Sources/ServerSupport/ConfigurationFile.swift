import Foundation
import NIOCore
import TOMLKit

/// A TOML configuration file (`origin/origin.conf`, `edge.conf`), read with TOMLKit. Errors
/// name the file and line, so an operator can fix a typo without guessing.
public struct ConfigurationFile {
    /// A problem with the file, already phrased for the operator.
    public struct Problem: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let path: String
    private let table: TOMLTable
    private let lines: [Substring]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Problem(description: "\(path): cannot read the file")
        }
        try self.init(text: text, path: path)
    }

    public init(text: String, path: String) throws {
        self.path = path
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let line = Self.unparseableTableHeader(text) {
            throw Problem(description: "\(path):\(line + 1): a table header must name a key (and settings are not in tables)")
        }
        if let line = Self.dateWithoutTime(text) {
            throw Problem(description: "\(path):\(line + 1): a date followed by 'T' must have a time (HH:MM:SS) after it")
        }
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Problem(description: "\(path):\(error.source.begin.line): \(error.description)")
        }
    }

    /// The index of the first line that looks like a table header whose key starts with neither a
    /// bare-key character nor a quote (`[/`, `[ é`, `[[ [`). toml++, inside TOMLKit, asserts that it
    /// never sees one (a debug build aborts, and so does a release build: SwiftPM does not define
    /// NDEBUG), so such a file is refused before it reaches the parser. Every line counts, even
    /// one inside a multi-line string: telling strings from comments here would be a second TOML
    /// parser, and the fuzzer got past a rough one (a `"""` inside a comment). Settings live at
    /// the top level and none needs such a string, so nothing valid is lost.
    static func unparseableTableHeader(_ text: String) -> Int? {
        // Split at LF bytes: a Character split would keep CRLF lines together.
        for (index, bytes) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = Substring(bytes)
            let blank: (Character) -> Bool = { ($0.isWhitespace && !$0.isNewline) || $0 == "\u{FEFF}" }
            var rest = line.drop(while: blank)
            guard rest.first == "[" else { continue }
            rest = rest.dropFirst()
            let afterBracket = rest.count
            rest = rest.drop(while: blank)
            if rest.first == "[" && rest.count == afterBracket {
                rest = rest.dropFirst().drop(while: blank)
            }
            let startsKey = rest.first.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_\"']".contains($0)) } ?? false
            if !startsKey { return index }
        }
        return nil
    }

    /// The index of the first line holding a date followed by `T` and no digit
    /// (`1979-05-27Tx`). toml++ asserts that a time follows (the `originconf` fuzz target
    /// aborted on it). Quoted text is not told apart: no setting of ours is a date, and a string
    /// value that looks like this one is refused too, with a message that says why.
    static func dateWithoutTime(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        func isDigit(_ index: Int) -> Bool { index < bytes.count && bytes[index] >= 0x30 && bytes[index] <= 0x39 }
        var line = 0
        for index in bytes.indices {
            if bytes[index] == 0x0A { line += 1 }
            // DDDD-DD-DD[Tt] at index, then something other than a digit.
            guard index + 10 < bytes.count, bytes[index + 4] == 0x2D, bytes[index + 7] == 0x2D,
                bytes[index + 10] == 0x54 || bytes[index + 10] == 0x74
            else { continue }
            let digitsAt = [0, 1, 2, 3, 5, 6, 8, 9]
            if digitsAt.allSatisfy({ isDigit(index + $0) }), !isDigit(index + 11) { return line }
        }
        return nil
    }

    /// Refuses keys this program does not know, naming the first one's line.
    public func rejectUnknownKeys(_ known: Set<String>) throws {
        for key in table.keys.sorted() where !known.contains(key) {
            throw problem(key, "unknown setting '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    public func string(_ key: String) throws -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else { throw problem(key, "'\(key)' must be a string") }
        return string
    }

    public func int(_ key: String) throws -> Int? {
        guard let value = table[key] else { return nil }
        guard let int = value.int else { throw problem(key, "'\(key)' must be an integer") }
        return int
    }

    /// A number written as an integer or a float (`10` or `2.5`).
    public func number(_ key: String) throws -> Double? {
        guard let value = table[key] else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double else { throw problem(key, "'\(key)' must be a number") }
        return double
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let value = table[key] else { return nil }
        guard let bool = value.bool else { throw problem(key, "'\(key)' must be true or false") }
        return bool
    }

    /// A duration, written as a string such as `"30s"`, `"500ms"`, `"2m"`.
    public func duration(_ key: String) throws -> TimeAmount? {
        guard let text = try string(key) else { return nil }
        guard let amount = DurationText.parse(text) else {
            throw problem(key, "'\(key)' must be a duration like \"30s\", \"500ms\" or \"2m\"")
        }
        return amount
    }

    /// A problem reported at the line that sets `key`.
    public func problem(_ key: String, _ message: String) -> Problem {
        let line = lines.firstIndex { line in
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(key) else { return false }
            return trimmed.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }.first == "="
        }
        return Problem(description: "\(path):\(line.map { String($0 + 1) } ?? "?"): \(message)")
    }
}

/// Durations as operators write them: a whole number and a unit (`ms`, `s`, `m`, `h`).
public enum DurationText {
    public static func parse(_ text: String) -> TimeAmount? {
        let units: [(String, Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        for (suffix, nanos) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigitCharacter), let value = Int64(number),
                value <= Int64.max / nanos
            else { return nil }
            return .nanoseconds(value * nanos)
        }
        return nil
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}

