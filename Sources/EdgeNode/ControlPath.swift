import DurableStreams

/// The protocol's control namespace: paths whose first segment below the stream prefix is
/// `__ds` (subscriptions, their callbacks and claims, the JWKS) are APIs of the origin, not
/// streams. The edge passes them through as they are; nothing it knows about streams applies.
/// Pure: tested without a server.
enum ControlPath {
    /// The reserved first segment.
    static let segment = "__ds"

    /// Whether `path` (a request target's path, without the query, as received) is in the
    /// control namespace under `prefix`.
    ///
    /// The first segment is compared percent-decoded, the way `StreamPath.canonicalName` reads
    /// a name, so `%5F%5Fds/…` and `__ds%2F…` count too: an origin that canonicalises first
    /// sees them as control requests, and the edge must then not cache or authorise them as
    /// reads of a stream. Erring this way only costs caching of a stream that would be named
    /// `__ds/…`, which the protocol reserves anyway.
    static func contains(_ path: Substring, prefix: String) -> Bool {
        guard path.utf8.starts(with: prefix.utf8) else { return false }
        let rest = path.utf8.dropFirst(prefix.utf8.count)
        let first = rest.prefix { $0 != UInt8(ascii: "/") }
        // Runs for every stream request: a first segment without escapes is compared in place.
        guard first.contains(UInt8(ascii: "%")) else { return first.elementsEqual(segment.utf8) }
        // An escape can hide a `/` (`%2F`), so the decoded segment is cut again. A malformed
        // escape names nothing the origin accepts; it takes the ordinary path (passed through).
        guard let decoded = QueryParameters.percentDecode(Substring(first), plusIsSpace: false) else { return false }
        return decoded.utf8.prefix { $0 != UInt8(ascii: "/") }.elementsEqual(segment.utf8)
    }

    /// Whether `uri` (a whole request target, query included) is in the control namespace.
    static func contains(uri: String, prefix: String) -> Bool {
        contains(RequestTarget(uri).path, prefix: prefix)
    }

    /// Whether `path` is the origin's key set for subscription tokens, spelled plainly: the one
    /// control answer meant to be shared (`Cache-Control: public, max-age=…`), and so the only
    /// one the edge may keep. Other spellings are merely passed through.
    static func isKeySet(_ path: Substring, prefix: String) -> Bool {
        path.utf8.count == prefix.utf8.count + keySetName.utf8.count
            && path.utf8.starts(with: prefix.utf8)
            && path.utf8.dropFirst(prefix.utf8.count).elementsEqual(keySetName.utf8)
    }

    private static let keySetName = segment + "/jwks.json"
}
