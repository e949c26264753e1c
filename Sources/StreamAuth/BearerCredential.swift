/// What an `Authorization` header presents: a bearer token (RFC 6750), which this server takes
/// for a JWT when it has the JWT shape (three base64url parts) and for an API key otherwise.
public enum BearerCredential: Equatable, Sendable {
    case jwt(Substring)
    case apiKey(Substring)

    /// `nil` when the header is not a well-formed bearer credential.
    public init?(header: String) {
        // One pass over the bytes: this runs on every request that carries credentials.
        let bytes = header.utf8
        var index = bytes.firstIndex { $0 != UInt8(ascii: " ") } ?? bytes.endIndex
        // "Bearer " in any case.
        for expected in "bearer ".utf8 {
            guard index != bytes.endIndex, Self.lowercased(bytes[index]) == expected else { return nil }
            bytes.formIndex(after: &index)
        }
        while index != bytes.endIndex, bytes[index] == UInt8(ascii: " ") { bytes.formIndex(after: &index) }
        // RFC 6750's b64token characters, at most 8 KiB: nothing else reaches a verifier.
        var length = 0
        var dots = 0
        var scan = index
        while scan != bytes.endIndex {
            let byte = bytes[scan]
            guard Self.isTokenByte(byte) else { return nil }
            if byte == UInt8(ascii: ".") { dots += 1 }
            length += 1
            guard length <= 8192 else { return nil }
            bytes.formIndex(after: &scan)
        }
        guard length > 0 else { return nil }
        let token = header[index...]
        self = dots == 2 ? .jwt(token) : .apiKey(token)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"),
            UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}
