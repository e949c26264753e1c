/// One sample line of a Prometheus text exposition: `name{label="value",...} value`.
public struct MetricSample: Sendable, Equatable {
    /// The series name as exposed, suffixes included (`_total`, `_bucket`, `_sum`, `_count`): a
    /// histogram arrives as several series, and the report wants them apart.
    public var name: String
    /// Label names to their unescaped values. A histogram bucket keeps its bound in `le`.
    public var labels: [String: String]
    public var value: Double

    public init(name: String, labels: [String: String] = [:], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// A reader for the Prometheus text exposition format (0.0.4), the format swift-prometheus
/// writes at `/metrics`.
///
/// It is lenient where leniency costs nothing and strict where a wrong number could slip into a
/// report:
/// - Lines may end in LF or CRLF; blank lines and every `#` line (`# HELP`, `# TYPE`, `# EOF`,
///   anything else) are skipped.
/// - A sample is `name`, an optional `{...}` label set (trailing comma allowed, quoted UTF-8
///   names as in newer Prometheus allowed), a value, an optional timestamp (read and dropped:
///   the load tester stamps its own scrapes), and an optional OpenMetrics exemplar after `#`
///   (dropped).
/// - Label values unescape `\\`, `\"` and `\n`; any other backslash pair is kept as written,
///   which is what Prometheus itself does.
/// - Values are Go-style floats: `1`, `-1.5`, `1e3`, `1e+20`, `+Inf`, `-Inf`, `NaN`.
///
/// A line that is none of the above (bad name, unterminated quote, duplicate label, missing or
/// unparsable value, trailing junk) is skipped on its own; the lines around it still count.
/// Skipping rather than failing the scrape is deliberate: one odd line from a newer server
/// should not cost the report every other figure. Nothing here traps on any input.
public enum PrometheusText {
    /// The samples of `text`, in the order they appear. Malformed lines are skipped (see the type's
    /// documentation); a series that appears twice appears twice here too.
    public static func parse(_ text: String) -> [MetricSample] {
        var samples: [MetricSample] = []
        let bytes = Array(text.utf8)
        var start = bytes.startIndex
        while start < bytes.endIndex {
            // Split on bytes, not Characters: Swift treats "\r\n" as one Character, so splitting a
            // String on "\n" would never split a CRLF file.
            let newline = bytes[start...].firstIndex(of: ASCII.lineFeed) ?? bytes.endIndex
            var end = newline
            if end > start, bytes[end - 1] == ASCII.carriageReturn { end -= 1 }
            if case .sample(let sample) = classify(bytes[start..<end]) {
                samples.append(sample)
            }
            start = newline + 1
        }
        return samples
    }

    /// What one line turned out to be. Kept apart from `parse` so tests can tell a skipped
    /// comment from a skipped malformed line.
    enum Line: Equatable {
        case blank
        case comment
        case sample(MetricSample)
        case malformed
    }

    /// Classifies a single line (without its line ending).
    static func classify(_ line: String) -> Line {
        classify(ArraySlice(line.utf8))
    }

    static func classify(_ line: ArraySlice<UInt8>) -> Line {
        var scanner = LineScanner(line)
        scanner.skipBlanks()
        guard let first = scanner.current else { return .blank }
        if first == ASCII.hash { return .comment }

        var name: String?
        if first != ASCII.openBrace {
            guard let bare = scanner.scanIdentifier(allowingColons: true) else { return .malformed }
            name = bare
        }
        var separated = scanner.skipBlanks()
        var labels: [String: String] = [:]
        if scanner.consume(ASCII.openBrace) {
            guard scanLabels(&scanner, into: &labels, name: &name) else { return .malformed }
            // The closing brace already ends the name part, so no blank is needed after it.
            scanner.skipBlanks()
            separated = true
        }
        guard let name, separated, let value = number(scanner.scanToken()) else { return .malformed }

        // Optional timestamp, then an optional exemplar; nothing else may follow.
        scanner.skipBlanks()
        if let next = scanner.current, next != ASCII.hash {
            guard let timestamp = number(scanner.scanToken()), timestamp.isFinite else { return .malformed }
            scanner.skipBlanks()
            if let after = scanner.current, after != ASCII.hash { return .malformed }
        }
        return .sample(MetricSample(name: name, labels: labels, value: value))
    }

    /// Reads the label set after its `{`, through the closing `}`. Returns false when the set
    /// does not follow the grammar, so the caller drops the whole line.
    private static func scanLabels(_ scanner: inout LineScanner, into labels: inout [String: String], name: inout String?) -> Bool {
        while true {
            scanner.skipBlanks()
            if scanner.consume(ASCII.closeBrace) { return true }

            let labelName: String
            if scanner.current == ASCII.quote {
                guard let quoted = scanner.scanQuoted() else { return false }
                scanner.skipBlanks()
                if scanner.current != ASCII.equals {
                    // A lone quoted string is the metric name in the UTF-8 syntax; only one is
                    // allowed, and not on top of a bare name.
                    guard name == nil, !quoted.isEmpty else { return false }
                    name = quoted
                    scanner.skipBlanks()
                    if scanner.consume(ASCII.comma) { continue }
                    return scanner.consume(ASCII.closeBrace)
                }
                labelName = quoted
            } else {
                guard let bare = scanner.scanIdentifier(allowingColons: false) else { return false }
                labelName = bare
            }

            scanner.skipBlanks()
            guard scanner.consume(ASCII.equals) else { return false }
            scanner.skipBlanks()
            // Prometheus rejects a repeated label name; guessing which value was meant would
            // silently move counts between series.
            guard !labelName.isEmpty, labels[labelName] == nil, let value = scanner.scanQuoted() else { return false }
            labels[labelName] = value

            scanner.skipBlanks()
            if scanner.consume(ASCII.comma) { continue }
            return scanner.consume(ASCII.closeBrace)
        }
    }

    /// A value or timestamp token as Go's `ParseFloat` reads it, or nil.
    private static func number(_ token: ArraySlice<UInt8>) -> Double? {
        // Only printable ASCII: the C-string based parsers stop at a NUL and would accept
        // "1\0junk" as 1.
        guard !token.isEmpty, token.allSatisfy({ $0 > ASCII.space && $0 < 0x7F }) else { return nil }
        let text = String(decoding: token, as: UTF8.self)
        // Spelled out because the exposition format's spellings (`+Inf`, `NaN`, any case) are
        // Go's, and should not depend on what the platform's float parser happens to accept.
        var unsigned = Substring(text)
        var negative = false
        if let sign = unsigned.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            unsigned = unsigned.dropFirst()
        }
        switch unsigned.lowercased() {
        case "inf", "infinity": return negative ? -.infinity : .infinity
        case "nan": return .nan
        default: break
        }
        guard let first = unsigned.first, first.isASCII, first.isNumber || first == "." else { return nil }
        return Double(text)
    }
}

/// A cursor over one line's bytes.
private struct LineScanner {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    var current: UInt8? { position < bytes.endIndex ? bytes[position] : nil }

    /// Skips spaces and tabs; true when there was at least one.
    @discardableResult
    mutating func skipBlanks() -> Bool {
        let start = position
        while let byte = current, byte == ASCII.space || byte == ASCII.tab { position += 1 }
        return position > start
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard current == byte else { return false }
        position += 1
        return true
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or, without colons, a label name.
    mutating func scanIdentifier(allowingColons: Bool) -> String? {
        let start = position
        while let byte = current {
            let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            let allowed = isLetter || byte == UInt8(ascii: "_") || (allowingColons && byte == UInt8(ascii: ":"))
                || (isDigit && position > start)
            guard allowed else { break }
            position += 1
        }
        guard position > start else { return nil }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// A double-quoted string with its escapes undone, or nil when it is not terminated on this line.
    mutating func scanQuoted() -> String? {
        guard consume(ASCII.quote) else { return nil }
        var unescaped: [UInt8] = []
        while let byte = current {
            position += 1
            switch byte {
            case ASCII.quote:
                return String(decoding: unescaped, as: UTF8.self)
            case ASCII.backslash:
                guard let escaped = current else { return nil }
                position += 1
                switch escaped {
                case ASCII.backslash, ASCII.quote: unescaped.append(escaped)
                case UInt8(ascii: "n"): unescaped.append(ASCII.lineFeed)
                default: unescaped.append(contentsOf: [ASCII.backslash, escaped])
                }
            default:
                // Bytes of multi-byte UTF-8 characters are all ≥ 0x80, so they can never be
                // mistaken for a quote or a backslash.
                unescaped.append(byte)
            }
        }
        return nil
    }

    /// The run of bytes up to the next blank or the end of the line.
    mutating func scanToken() -> ArraySlice<UInt8> {
        let start = position
        while let byte = current, byte != ASCII.space, byte != ASCII.tab { position += 1 }
        return bytes[start..<position]
    }
}

private enum ASCII {
    static let tab = UInt8(ascii: "\t")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let quote = UInt8(ascii: "\"")
    static let hash = UInt8(ascii: "#")
    static let comma = UInt8(ascii: ",")
    static let equals = UInt8(ascii: "=")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
}
