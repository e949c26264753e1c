/// Readers that stay connected waiting for data (SSE responses, long-polls), in all and per
/// stream: exact, and bounded by the open connections (a stream's entry goes at zero). Both
/// servers keep one under their metrics lock for their stats pages.
public struct LiveReaders: Sendable {
    public enum Kind: Sendable { case sse, longPoll }

    public private(set) var sse = 0
    public private(set) var longPolls = 0
    private var byStream: [String: Int] = [:]

    public init() {}

    public mutating func started(_ stream: String, _ kind: Kind) {
        byStream[stream, default: 0] += 1
        if kind == .sse { sse += 1 } else { longPolls += 1 }
    }

    public mutating func ended(_ stream: String, _ kind: Kind) {
        let left = (byStream[stream] ?? 1) - 1
        byStream[stream] = left > 0 ? left : nil
        if kind == .sse { sse -= 1 } else { longPolls -= 1 }
    }

    /// Readers of `stream` waiting now.
    public func count(for stream: String) -> Int { byStream[stream] ?? 0 }
}
