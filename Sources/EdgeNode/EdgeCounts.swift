import ServerSupport

extension CacheOutcome {
    /// Answered without an upstream request of this client's own: the outcomes a CDN dashboard
    /// counts as served by the edge. COLLAPSED shares another client's upstream request, and
    /// REVALIDATED sends the cached body after a 304; MISS and PASS are the upstream's answers.
    public var isServedFromCache: Bool {
        switch self {
        case .hit, .stale, .revalidated, .collapsed: true
        case .miss, .pass: false
        }
    }

    /// Position in `allCases`, for the flat count arrays.
    var ordinal: Int {
        switch self {
        case .hit: 0
        case .miss: 1
        case .stale: 2
        case .revalidated: 3
        case .collapsed: 4
        case .pass: 5
        }
    }
}

extension RequestClass {
    /// Position in `allCases`, for the flat count arrays.
    var ordinal: Int {
        switch self {
        case .catchUp: 0
        case .longPoll: 1
        case .sse: 2
        case .write: 3
        case .head: 4
        case .other: 5
        case .route: 6
        }
    }
}

/// The edge's cumulative counts since it started, kept as plain integers in flat arrays (cheap
/// to bump on every request, cheap to copy once a second); the difference of two is one
/// interval's activity.
struct EdgeCounts: Sendable, Equatable {
    /// Upper bounds, in seconds, of the upstream latency buckets (the last bucket is unbounded);
    /// the same as the Prometheus histogram's.
    static let latencyBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    static let classes = RequestClass.allCases
    static let outcomes = CacheOutcome.allCases

    /// Client requests by class and outcome: `requests[class.ordinal * outcomes.count + outcome.ordinal]`.
    var requests = [Int](repeating: 0, count: classes.count * outcomes.count)
    /// Upstream requests by class.
    var upstream = [Int](repeating: 0, count: classes.count)
    /// Body bytes sent to clients for streams (route answers are not counted): from the cache,
    /// and from upstream answers (each collapsed client's copy included).
    var bytesFromCache = 0
    var bytesFromUpstream = 0
    /// Body bytes of stream answers received from the upstream (what the origin sent).
    var bytesReceived = 0
    var upstreamErrors = 0
    var routeUpstreamErrors = 0
    /// Upstream answers by latency bucket (`latencyBounds`, then everything slower).
    var latency = [Int](repeating: 0, count: latencyBounds.count + 1)
    /// Cache evictions (copied from the cache's own count when sampled).
    var evictions = 0

    func requests(_ kind: RequestClass, _ outcome: CacheOutcome) -> Int {
        requests[Self.requestIndex(kind, outcome)]
    }

    /// Where `kind` and `outcome` are counted in `requests`.
    static func requestIndex(_ kind: RequestClass, _ outcome: CacheOutcome) -> Int {
        kind.ordinal * outcomes.count + outcome.ordinal
    }

    mutating func countRequest(_ kind: RequestClass, _ outcome: CacheOutcome) {
        requests[Self.requestIndex(kind, outcome)] &+= 1
    }

    mutating func countLatency(_ seconds: Double) {
        let bucket = Self.latencyBounds.firstIndex { seconds <= $0 } ?? Self.latencyBounds.count
        latency[bucket] &+= 1
    }

    /// Requests for streams (every class but `route`), served from the cache.
    var servedFromCache: Int {
        Self.classes.filter { $0 != .route }.reduce(0) { sum, kind in
            Self.outcomes.filter(\.isServedFromCache).reduce(sum) { $0 &+ requests(kind, $1) }
        }
    }

    /// Requests for streams that the cache could have answered (every outcome but PASS).
    var cacheCandidates: Int {
        Self.classes.filter { $0 != .route }.reduce(0) { sum, kind in
            Self.outcomes.filter { $0 != .pass }.reduce(sum) { $0 &+ requests(kind, $1) }
        }
    }

    var clientRequests: Int { requests.reduce(0, &+) }
    var upstreamRequests: Int { upstream.reduce(0, &+) }
    var streamRequests: Int { clientRequests &- Self.outcomes.reduce(0) { $0 &+ requests(.route, $1) } }
    var streamUpstreamRequests: Int { upstreamRequests &- upstream[RequestClass.route.ordinal] }

    /// `self - earlier`, field by field: one interval's counts.
    func since(_ earlier: EdgeCounts) -> EdgeCounts {
        var delta = self
        delta.add(earlier, sign: -1)
        return delta
    }

    mutating func add(_ other: EdgeCounts, sign: Int = 1) {
        for index in requests.indices { requests[index] &+= sign &* other.requests[index] }
        for index in upstream.indices { upstream[index] &+= sign &* other.upstream[index] }
        for index in latency.indices { latency[index] &+= sign &* other.latency[index] }
        bytesFromCache &+= sign &* other.bytesFromCache
        bytesFromUpstream &+= sign &* other.bytesFromUpstream
        bytesReceived &+= sign &* other.bytesReceived
        upstreamErrors &+= sign &* other.upstreamErrors
        routeUpstreamErrors &+= sign &* other.routeUpstreamErrors
        evictions &+= sign &* other.evictions
    }

    /// The latency below which `quantile` of the interval's upstream answers fell: the upper
    /// bound of the bucket that holds it (nil without answers; `.infinity` past the last bound).
    func latencyQuantile(_ quantile: Double) -> Double? {
        let total = latency.reduce(0, &+)
        guard total > 0 else { return nil }
        let rank = max(1, Int((quantile * Double(total)).rounded(.up)))
        var seen = 0
        for (bucket, count) in latency.enumerated() {
            seen &+= count
            if seen >= rank { return bucket < Self.latencyBounds.count ? Self.latencyBounds[bucket] : .infinity }
        }
        return .infinity
    }
}

/// What the edge held at one instant: the gauges sampled with each interval.
struct EdgeGauges: Sendable, Equatable {
    var cacheBytes = 0
    var cacheEntries = 0
    var openConnections = 0
    var openSSE = 0
    var openLongPolls = 0
    /// Upstream SSE subscriptions: each feeds every SSE client of its stream.
    var upstreamSSESubscriptions = 0
}

/// One interval of the edge's history: its counts and the gauges at its end.
struct EdgeSample: HistorySample, Equatable {
    var counts: EdgeCounts
    var gauges: EdgeGauges

    mutating func absorb(_ later: EdgeSample) {
        counts.add(later.counts)
        gauges = later.gauges
    }
}
