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
    /// The settings before the first `[[…]]` header, which is where TOML puts top-level keys.
    private let top: Section

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Problem(description: "\(path): cannot read the file")
        }
        try self.init(text: text, path: path)
    }

    public init(text: String, path: String) throws {
        self.path = path
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        self.lines = lines
        if let (line, reason) = SettingsSubset.firstProblem(in: text) {
            throw Problem(description: "\(path):\(line + 1): \(reason)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Problem(description: "\(path):\(error.source.begin.line): \(error.description)")
        }
        self.table = table
        let firstHeader = lines.indices.first { SettingsSubset.arrayTableHeader(line: lines[$0]) != nil } ?? lines.count
        self.top = Section(path: path, name: nil, header: nil, table: table, lines: lines, range: 0..<firstHeader)
    }

    /// Settings whose values differ between two files (a key in one only counts), sorted: what
    /// a reload would change. A `[[name]]` array counts as one setting, changed if any of its
    /// tables is.
    public func changedKeys(from other: ConfigurationFile) -> [String] {
        Set(table.keys).union(other.table.keys).filter { key in
            table[key].map { "\($0)" } != other.table[key].map { "\($0)" }
        }.sorted()
    }

    /// Refuses top-level keys this program does not know (a `[[name]]` array is a key too),
    /// naming the first one's line.
    public func rejectUnknownKeys(_ known: Set<String>) throws {
        try top.rejectUnknownKeys(known)
    }

    public func string(_ key: String) throws -> String? { try top.string(key) }
    public func int(_ key: String) throws -> Int? { try top.int(key) }
    public func strings(_ key: String) throws -> [String]? { try top.strings(key) }
    /// A number written as an integer or a float (`10` or `2.5`).
    public func number(_ key: String) throws -> Double? { try top.number(key) }
    public func bool(_ key: String) throws -> Bool? { try top.bool(key) }
    /// A duration, written as a string such as `"30s"`, `"500ms"`, `"2m"`.
    public func duration(_ key: String) throws -> TimeAmount? { try top.duration(key) }

    /// A problem reported at the line that sets the top-level `key` (or its `[[key]]` header).
    public func problem(_ key: String, _ message: String) -> Problem {
        top.problem(key, message)
    }

    /// The tables of a `[[key]]` array, in file order; empty when the file has none. Each is
    /// a `Section` with the same typed getters, whose problems name lines inside that table.
    public func tables(_ key: String) throws -> [Section] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else { throw problem(key, "'\(key)' must be written as [[\(key)]] tables") }
        let headers = lines.indices.filter { SettingsSubset.arrayTableHeader(line: lines[$0]) == key }
        let allHeaders = lines.indices.filter { SettingsSubset.arrayTableHeader(line: lines[$0]) != nil }
        var sections: [Section] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else { throw problem(key, "'\(key)' must be written as [[\(key)]] tables") }
            // The n-th table of the array is the n-th `[[key]]` header: the subset has no other
            // way to write one (no inline tables, no dotted names).
            let header = index < headers.count ? headers[index] : nil
            let end = header.flatMap { header in allHeaders.first { $0 > header } } ?? lines.count
            let range = header.map { ($0 + 1)..<end } ?? lines.count..<lines.count
            sections.append(Section(path: path, name: key, header: header, table: table, lines: lines, range: range))
        }
        return sections
    }

    /// The settings of one table of a `[[name]]` array (`ConfigurationFile.tables`), or the
    /// file's top level. Getters return `nil` for an absent key and throw a `Problem` naming the
    /// line for a value of the wrong type.
    public struct Section {
        public let path: String
        /// The array this table belongs to (`route` for `[[route]]`); `nil` at the top level.
        public let name: String?
        /// The 0-based line of the table's `[[name]]` header.
        let header: Int?
        /// The line (from 1) of the table's `[[name]]` header, for messages that point at it.
        public var headerLine: Int? { header.map { $0 + 1 } }
        private let table: TOMLTable
        private let lines: [Substring]
        /// The lines holding this table's settings.
        private let range: Range<Int>

        init(path: String, name: String?, header: Int?, table: TOMLTable, lines: [Substring], range: Range<Int>) {
            self.path = path
            self.name = name
            self.header = header
            self.table = table
            self.lines = lines
            self.range = range
        }

        /// The keys set in this table, sorted.
        public var keys: [String] { table.keys.sorted() }

        /// Refuses keys this program does not know, naming the first one's line.
        public func rejectUnknownKeys(_ known: Set<String>) throws {
            for key in table.keys.sorted() where !known.contains(key) {
                guard let name else {
                    throw problem(key, "unknown setting '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
                }
                // TOML puts every line after a header into its table: a top-level setting
                // written below a `[[route]]` lands here.
                throw problem(key, "unknown setting '\(key)' in [[\(name)]] (known: \(known.sorted().joined(separator: ", "))); "
                    + "top-level settings go before the first [[\(name)]]")
            }
        }

        public func string(_ key: String) throws -> String? {
            guard let value = table[key] else { return nil }
            guard let string = value.string else { throw problem(key, "'\(key)' must be a string") }
            return string
        }

        /// A list of strings (`["a", "b"]`).
        public func strings(_ key: String) throws -> [String]? {
            guard let value = table[key] else { return nil }
            let problem = { self.problem(key, "'\(key)' must be a list of strings, e.g. [\"a\", \"b\"]") }
            guard let array = value.array else { throw problem() }
            return try array.map { element in
                guard let string = element.tomlValue.string else { throw problem() }
                return string
            }
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

        /// A problem reported at the line that sets `key` in this table; for a key it does not
        /// set (a required one missing), at its `[[name]]` header. At the top level, a key set by
        /// no line is looked for as a `[[key]]` header.
        public func problem(_ key: String, _ message: String) -> Problem {
            let setting = range.first { index in
                let trimmed = lines[index].drop { $0 == " " || $0 == "\t" }
                guard trimmed.hasPrefix(key) else { return false }
                return trimmed.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }.first == "="
            }
            let line = setting ?? (name == nil ? lines.indices.first { SettingsSubset.arrayTableHeader(line: lines[$0]) == key } : header)
            return Problem(description: "\(path):\(line.map { String($0 + 1) } ?? "?"): \(message)")
        }

        /// A problem with the table as a whole, reported at its `[[name]]` header.
        public func problem(_ message: String) -> Problem {
            Problem(description: "\(path):\(header.map { String($0 + 1) } ?? "?"): \(message)")
        }
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

