/// What an `Authorization` header presents: a bearer token (RFC 6750), which this server takes
/// for a JWT when it has the JWT shape (three base64url parts) and for an API key otherwise.
public enum BearerCredential: Equatable, Sendable {
    case jwt(Substring)
    case apiKey(Substring)

    /// `nil` when the header is not a well-formed bearer credential.
    public init?(header: String) {
        // One pass over the bytes, in place: this runs on every request that carries credentials.
        var contiguous = header  // `withUTF8` may make a bridged string native; headers already are
        let found = contiguous.withUTF8 { bytes -> (start: Int, isJWT: Bool)? in
            var index = 0
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            // "Bearer " in any case.
            for expected in Self.scheme {
                guard index < bytes.count, Self.lowercased(bytes[index]) == expected else { return nil }
                index += 1
            }
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            // RFC 6750's b64token characters, at most 8 KiB: nothing else reaches a verifier.
            let length = bytes.count - index
            guard length > 0, length <= 8192 else { return nil }
            var dots = 0
            for byte in bytes[index...] {
                guard Self.isTokenByte(byte) else { return nil }
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
            return (index, dots == 2)
        }
        guard let found else { return nil }
        let token = header[header.utf8.index(header.startIndex, offsetBy: found.start)...]
        self = found.isJWT ? .jwt(token) : .apiKey(token)
    }

    private static let scheme = Array("bearer ".utf8)

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
