/// The decoded query parameters of a request URI.
public struct QueryParameters: Sendable {
    private var pairs: [(String, String)]

    /// Parses `a=1&b=x%20y`; `+` is a space, as in forms. A malformed escape is a 400.
    public init(query: Substring) throws(ProtocolError) {
        pairs = []
        pairs.reserveCapacity(4)
        // A scan by index rather than `split`, which builds an array per item: this runs on
        // every request.
        var rest = query
        while !rest.isEmpty {
            let end = rest.utf8.firstIndex(of: UInt8(ascii: "&")) ?? rest.endIndex
            let item = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.utf8.index(after: end)...]
            if item.isEmpty { continue }
            let equals = item.utf8.firstIndex(of: UInt8(ascii: "="))
            let rawName = equals.map { item[..<$0] } ?? item
            let rawValue = equals.map { item[item.utf8.index(after: $0)...] } ?? item[item.endIndex...]
            guard let name = Self.percentDecode(rawName), let value = Self.percentDecode(rawValue) else {
                throw ProtocolError(.badRequest, "malformed percent-encoding in query string")
            }
            pairs.append((name, value))
        }
    }

    /// The first value for `name`.
    public subscript(_ name: String) -> String? {
        pairs.first { $0.0 == name }?.1
    }

    /// Whether `name` appears more than once (ambiguous for the protocol's parameters).
    public func isRepeated(_ name: String) -> Bool {
        pairs.lazy.filter { $0.0 == name }.count > 1
    }

    /// Decodes `%XX` escapes and, in query strings, `+` as a space; `nil` for a bad escape or
    /// invalid UTF-8.
    public static func percentDecode(_ text: Substring, plusIsSpace: Bool = true) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(text)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+") where plusIsSpace: bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
