/// What an `Authorization` header presents: a bearer token (RFC 6750), which this server takes
/// for a JWT when it has the JWT shape (three base64url parts) and for an API key otherwise.
public enum BearerCredential: Equatable, Sendable {
    case jwt(Substring)
    case apiKey(Substring)

    /// `nil` when the header is not a well-formed bearer credential.
    public init?(header: String) {
        let trimmed = header.utf8.drop { $0 == UInt8(ascii: " ") }
        // "Bearer " in any case, compared byte by byte (this runs on every request).
        guard trimmed.count > 7, zip(trimmed.prefix(7), "bearer ".utf8).allSatisfy({ Self.lowercased($0) == $1 }) else { return nil }
        let token = Substring(trimmed.dropFirst(7).drop { $0 == UInt8(ascii: " ") })
        // RFC 6750's b64token characters, at most 8 KiB: nothing else reaches a verifier.
        guard !token.isEmpty, token.utf8.count <= 8192, token.utf8.allSatisfy(Self.isTokenByte) else { return nil }
        let dots = token.utf8.count { $0 == UInt8(ascii: ".") }
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
