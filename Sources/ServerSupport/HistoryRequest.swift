/// Which part of a `SampleHistory` a stats request asks for (`/__edge/stats`,
/// `/__origin/stats`): the same query syntax on every server.
public enum HistoryRequest: Equatable, Sendable {
    case none
    /// Every per-second sample (the last hour).
    case seconds
    /// Per-second samples newer than a Unix time.
    case secondsAfter(Int64)
    /// Every per-minute sample (the last day).
    case minutes

    /// From the stats path's query: `history=hour`, `history=day` or `since=UNIX_SECONDS`;
    /// anything else asks for no history (never an error).
    public init(query: Substring) {
        self = .none
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch (parts[0], parts[1]) {
            case ("history", "hour"): self = .seconds
            case ("history", "day"): self = .minutes
            case ("since", let value):
                if let time = Int64(value), time >= 0 { self = .secondsAfter(time) }
            default: continue
            }
        }
    }

    /// Seconds each row covers: 60 for minutes, otherwise 1.
    public var step: Int { self == .minutes ? 60 : 1 }
}

extension SampleHistory {
    /// The samples `request` asks for, oldest first (none for `.none`).
    public func samples(for request: HistoryRequest) -> [Stamped] {
        switch request {
        case .none: []
        case .seconds: seconds()
        case .secondsAfter(let time): seconds(after: time)
        case .minutes: minutes()
        }
    }
}
