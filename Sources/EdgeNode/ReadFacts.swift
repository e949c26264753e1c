import DurableStreams
import NIOHTTP1

/// What an upstream read answer says about its stream, parsed once from its headers when it
/// arrives and kept with it (in the flight's answer and the cache entry), so the hot paths
/// compare typed values instead of re-reading header strings.
public struct ReadFacts: Sendable, Equatable {
    /// `Stream-Next-Offset`: where the answer ends; `nil` when absent or malformed.
    public var nextOffset: StreamOffset?
    /// `Stream-Up-To-Date: true`.
    public var upToDate: Bool
    /// `Stream-Closed: true`.
    public var closed: Bool
    /// `Stream-Cursor`, as sent.
    public var cursor: String?
    /// `ETag`, as sent.
    public var etag: String?
    /// `Cache-Control: private`: the answer is for the request that asked only.
    public var isPrivate: Bool

    public init(
        nextOffset: StreamOffset? = nil, upToDate: Bool = false, closed: Bool = false, cursor: String? = nil, etag: String? = nil,
        isPrivate: Bool = false
    ) {
        self.nextOffset = nextOffset
        self.upToDate = upToDate
        self.closed = closed
        self.cursor = cursor
        self.etag = etag
        self.isPrivate = isPrivate
    }

    public init(_ headers: HTTPHeaders) {
        self.init(
            nextOffset: headers.first(name: HeaderName.nextOffset).flatMap(StreamOffset.init),
            upToDate: HeaderName.isTrue(headers.first(name: HeaderName.upToDate)),
            closed: HeaderName.isTrue(headers.first(name: HeaderName.closed)),
            cursor: headers.first(name: HeaderName.cursor),
            etag: headers.first(name: "ETag"),
            isPrivate: CacheControl(headers.first(name: "Cache-Control")).isPrivate)
    }
}
