/// A stream name as a dictionary key that compares byte for byte: Swift's `String` equality
/// treats canonically equivalent Unicode (precomposed and combining accents) as equal, which
/// would alias two URLs. Also used for producer ids, for the same reason.
struct StreamKey: Hashable, Sendable {
    let bytes: [UInt8]
    init(_ text: String) { bytes = Array(text.utf8) }
}
