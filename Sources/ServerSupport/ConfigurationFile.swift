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
        if let (line, reason) = SettingsSubset.firstProblem(in: text) {
            throw Problem(description: "\(path):\(line + 1): \(reason)")
        }
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Problem(description: "\(path):\(error.source.begin.line): \(error.description)")
        }
    }

    /// Settings whose values differ between two files (a key in one only counts), sorted: what
    /// a reload would change.
    public func changedKeys(from other: ConfigurationFile) -> [String] {
        Set(table.keys).union(other.table.keys).filter { key in
            table[key].map { "\($0)" } != other.table[key].map { "\($0)" }
        }.sorted()
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

