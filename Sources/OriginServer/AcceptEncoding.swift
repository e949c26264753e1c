import CompressNIO
import NIOHTTP1

/// A content coding the origin compresses responses with.
enum ContentCoding: String, Sendable {
    case gzip
    case deflate

    /// The `Content-Encoding` value.
    var headerValue: String { rawValue }

    /// HTTP's `deflate` is the zlib format (RFC 1950, RFC 9110 §8.4.1.2), not raw deflate; it is
    /// what swift-nio-extras' compressor sent for it (window bits 15). zlib's default level,
    /// window and memory settings are those it used too, so the bytes are the same.
    var algorithm: CompressionAlgorithm {
        switch self {
        case .gzip: return .gzip()
        case .deflate: return .zlib()
        }
    }
}

/// Which coding a request's `Accept-Encoding` lets the origin compress with.
///
/// The rules are those of swift-nio-extras' `HTTPResponseCompressor`, which compressed the
/// origin's responses before this, kept as they were so clients see no difference:
/// - an element counts when it *starts with* `gzip` or `x-gzip` (both mean gzip), `deflate`, or
///   `*`, compared case-sensitively; a later element for the same coding replaces an earlier one;
/// - its q-value is 1 when it has no parameter, and 0 (refused) when the parameter is anything
///   but `q=<number in 0...1>` written without spaces (so `gzip; q=0.5` counts as refused);
/// - gzip is chosen when its q-value is greater than deflate's, deflate when either is accepted
///   and gzip's is not greater (a tie, as in `gzip, deflate`, goes to deflate);
/// - otherwise an accepted `*` means gzip, even when gzip itself was refused (`gzip;q=0, *`);
/// - `identity`, any other coding, or no header at all: nothing to compress with.
enum AcceptEncoding {
    /// The coding to compress the answer to a request with these headers, or nil for none.
    static func preferredCoding(in headers: HTTPHeaders) -> ContentCoding? {
        // Absent stays below every real q-value (0...1).
        var gzip: Float = -1
        var deflate: Float = -1
        var any: Float = -1
        for element in headers[canonicalForm: "Accept-Encoding"] {
            if element.utf8.starts(with: "gzip".utf8) || element.utf8.starts(with: "x-gzip".utf8) {
                gzip = qValue(of: element)
            } else if element.utf8.starts(with: "deflate".utf8) {
                deflate = qValue(of: element)
            } else if element.utf8.starts(with: "*".utf8) {
                any = qValue(of: element)
            }
        }
        if gzip > 0 || deflate > 0 { return gzip > deflate ? .gzip : .deflate }
        return any > 0 ? .gzip : nil
    }

    /// The q-value of one list element such as `gzip;q=0.5`: 1 without a parameter, 0 when the
    /// parameter is not a well-formed `q` (see the type's notes).
    static func qValue(of element: Substring) -> Float {
        let parts = element.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count > 1, !parts[1].isEmpty else { return 1 }
        let parameter = parts[1].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parameter.count > 1 else { return 0 }
        guard parameter[0].utf8.count == 1, let name = parameter[0].utf8.first,
              name == UInt8(ascii: "q") || name == UInt8(ascii: "Q")
        else { return 0 }
        let value = Float(parameter[1]) ?? 0
        return value.isNaN || value < 0 || value > 1 ? 0 : value
    }
}
