/// Bytes of one HTTP/2 stream's responses that have left the stream (their writes completed):
/// how `ConnectionGuardHandler` sees a stream's client keep up, where an HTTP/1.1 connection's
/// guard asks the socket instead. Touched only on the stream's event loop.
public final class SentBytes: @unchecked Sendable {
    public internal(set) var count = 0

    public init() {}

    func add(_ bytes: Int) {
        count &+= bytes
    }
}
