/// JSON mode framing (§9.1): validates an append body and splits it into messages, keeping each
/// message's bytes exactly as the client sent them.
///
/// Foundation's JSONSerialization would validate, but it cannot report where each top-level
/// element starts and ends, and re-serialising changes the client's bytes (number spelling,
/// key order). This scanner follows RFC 8259's grammar and records element spans only.
public enum JSONMessages {
    /// Nesting deeper than this is rejected rather than risking the stack.
    public static let maxDepth = 256

    /// Why a body is not acceptable JSON.
    public enum Failure: Error, Hashable, Sendable {
        case invalid(at: Int, String)
        case emptyArray
    }

    /// The byte ranges of the messages in `body`: the elements of a top-level array (one level
    /// flattened), or the whole value otherwise. A top-level `[]` throws `.emptyArray`; callers
    /// decide whether that is an error (POST) or an empty initial body (PUT).
    public static func split(_ body: UnsafeRawBufferPointer) throws(Failure) -> [Range<Int>] {
        var scanner = Scanner(bytes: body)
        scanner.skipWhitespace()
        guard scanner.index < body.count else { throw .invalid(at: 0, "empty body is not JSON") }
        var spans: [Range<Int>] = []
        if body[scanner.index] == UInt8(ascii: "[") {
            scanner.index += 1
            scanner.skipWhitespace()
            if scanner.peek == UInt8(ascii: "]") {
                scanner.index += 1
                try scanner.expectEnd()
                throw .emptyArray
            }
            while true {
                scanner.skipWhitespace()
                let start = scanner.index
                try scanner.value(depth: 1)
                spans.append(start..<scanner.index)
                scanner.skipWhitespace()
                guard let next = scanner.peek else { throw scanner.failure("unterminated array") }
                guard next == UInt8(ascii: "]") || next == UInt8(ascii: ",") else {
                    throw scanner.failure("expected ',' or ']' in array")
                }
                scanner.index += 1
                if next == UInt8(ascii: "]") { break }
            }
        } else {
            let start = scanner.index
            try scanner.value(depth: 0)
            spans.append(start..<scanner.index)
        }
        try scanner.expectEnd()
        return spans
    }

    /// Validates one complete JSON text.
    public static func validate(_ body: UnsafeRawBufferPointer) throws(Failure) {
        var scanner = Scanner(bytes: body)
        scanner.skipWhitespace()
        try scanner.value(depth: 0)
        try scanner.expectEnd()
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        func failure(_ message: String) -> Failure { .invalid(at: index, message) }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expectEnd() throws(Failure) {
            skipWhitespace()
            guard index == bytes.count else { throw failure("unexpected data after the JSON value") }
        }

        mutating func value(depth: Int) throws(Failure) {
            guard depth <= JSONMessages.maxDepth else { throw failure("nesting too deep") }
            guard let byte = peek else { throw failure("unexpected end of JSON") }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw failure("unexpected character")
            }
        }

        mutating func object(depth: Int) throws(Failure) {
            index += 1
            skipWhitespace()
            if peek == UInt8(ascii: "}") { index += 1; return }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw failure("expected a string key") }
                try string()
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw failure("expected ':' after key") }
                index += 1
                skipWhitespace()
                try value(depth: depth)
                skipWhitespace()
                guard let next = peek else { throw failure("unterminated object") }
                guard next == UInt8(ascii: "}") || next == UInt8(ascii: ",") else { throw failure("expected ',' or '}' in object") }
                index += 1
                if next == UInt8(ascii: "}") { return }
            }
        }

        mutating func array(depth: Int) throws(Failure) {
            index += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") { index += 1; return }
            while true {
                skipWhitespace()
                try value(depth: depth)
                skipWhitespace()
                guard let next = peek else { throw failure("unterminated array") }
                guard next == UInt8(ascii: "]") || next == UInt8(ascii: ",") else { throw failure("expected ',' or ']' in array") }
                index += 1
                if next == UInt8(ascii: "]") { return }
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw failure("invalid literal") }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
                throw failure("invalid literal")
            }
            index += count
        }

        mutating func number() throws(Failure) {
            if peek == UInt8(ascii: "-") { index += 1 }
            guard let first = peek, isDigit(first) else { throw failure("invalid number") }
            index += 1
            if first != UInt8(ascii: "0") { digits() }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard let digit = peek, isDigit(digit) else { throw failure("invalid number fraction") }
                digits()
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard let digit = peek, isDigit(digit) else { throw failure("invalid number exponent") }
                digits()
            }
        }

        mutating func digits() {
            while let byte = peek, isDigit(byte) { index += 1 }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func string() throws(Failure) {
            index += 1
            while let byte = peek {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escaped = peek else { throw failure("unterminated escape") }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        break
                    case UInt8(ascii: "u"):
                        for _ in 0..<4 {
                            guard let hex = peek, isHex(hex) else { throw failure("invalid \\u escape") }
                            index += 1
                        }
                    default:
                        throw failure("invalid escape")
                    }
                case 0x00..<0x20:
                    throw failure("control character in string")
                case 0x80...:
                    try utf8Sequence()
                default:
                    index += 1
                }
            }
            throw failure("unterminated string")
        }

        /// JSON text must be UTF-8; a malformed sequence inside a string is rejected.
        mutating func utf8Sequence() throws(Failure) {
            let lead = bytes[index]
            let length: Int
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: throw failure("invalid UTF-8")
            }
            guard index + length <= bytes.count else { throw failure("invalid UTF-8") }
            let second = bytes[index + 1]
            switch lead {
            case 0xE0: guard (0xA0...0xBF).contains(second) else { throw failure("invalid UTF-8") }
            case 0xED: guard (0x80...0x9F).contains(second) else { throw failure("invalid UTF-8") }
            case 0xF0: guard (0x90...0xBF).contains(second) else { throw failure("invalid UTF-8") }
            case 0xF4: guard (0x80...0x8F).contains(second) else { throw failure("invalid UTF-8") }
            default: guard (0x80...0xBF).contains(second) else { throw failure("invalid UTF-8") }
            }
            for offset in 2..<max(2, length) where !(0x80...0xBF).contains(bytes[index + offset]) {
                throw failure("invalid UTF-8")
            }
            index += length
        }

        func isHex(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
        }
    }
}
