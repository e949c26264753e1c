import DurableStreams

/// Identifies one cacheable answer: the stream, the request's protocol parameters in a fixed
/// order, and, when the answer may differ per user, the user's credentials.
///
/// Parameters are normalised so that every spelling of the same read shares one entry:
/// `offset=-1` and no offset are the same read, `cursor` only matters to live reads, and
/// parameters the protocol does not define are dropped (the origin ignores them too).
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    /// The stream's canonical name (`StreamPath.canonicalName`), e.g. `chat/room-1`: every
    /// spelling of its URL path (`chat%2Froom-1`, `chat/room%2D1`) shares its entries.
    public let stream: String
    /// The normalised query: `live=…&offset=…[&cursor=…]`.
    public let variant: String
    /// The credentials the answer belongs to (the request's `Authorization` value), or `nil`
    /// for a shared answer. Kept whole rather than hashed: a hash collision would hand one
    /// user's answer to another. Never printed.
    public let credentials: String?

    public init(stream: String, variant: String, credentials: String? = nil) {
        self.stream = stream
        self.variant = variant
        self.credentials = credentials
    }

    /// The key for a read, or `nil` when the read must never be cached (`offset=now`).
    public init?(stream: String, start: ReadStart, mode: StreamOperation.ReadMode, credentials: String?) {
        let offset: String
        switch start {
        case .now: return nil
        case .beginning: offset = "-1"
        case .offset(let value): offset = value.description
        }
        var variant: String
        switch mode {
        case .catchUp: variant = "offset=\(offset)"
        case .longPoll(let cursor): variant = "live=long-poll&offset=\(offset)" + (cursor.map { "&cursor=\($0)" } ?? "")
        case .sse: return nil
        }
        self.init(stream: stream, variant: variant, credentials: credentials)
    }

    /// The same answer, gzip-encoded: stored apart, as the upstream sent it.
    public var gzipVariant: CacheKey {
        CacheKey(stream: stream, variant: variant + "&encoding=gzip", credentials: credentials)
    }

    public var description: String {
        "\(stream)?\(variant)" + (credentials == nil ? "" : " [credentialed]")
    }
}
