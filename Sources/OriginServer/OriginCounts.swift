import ServerSupport

/// What the origin was asked to do: the `operation` label of `ds_origin_requests_total`, and
/// the request-mix columns of `/__origin/stats`.
public enum OriginOperation: String, Sendable, CaseIterable {
    case create
    case append
    /// A `POST` without a body type: closes the stream (§5.3).
    case close
    /// A catch-up read.
    case read
    case longPoll = "long_poll"
    case sse
    case head
    case delete
    /// A CORS preflight of a stream path.
    case options
    /// A stream path the origin could not make sense of (400).
    case invalid
    /// The origin's own observability endpoints: `/metrics`, `/__origin/stats`, `/__origin/`.
    case metrics
    /// Everything else (`/healthz`, unknown paths).
    case other

    /// Position in `allCases`, for the flat count arrays.
    var ordinal: Int {
        switch self {
        case .create: 0
        case .append: 1
        case .close: 2
        case .read: 3
        case .longPoll: 4
        case .sse: 5
        case .head: 6
        case .delete: 7
        case .options: 8
        case .invalid: 9
        case .metrics: 10
        case .other: 11
        }
    }

    /// A request that reads a stream's data (catch-up, long-poll, SSE).
    var isRead: Bool { self == .read || self == .longPoll || self == .sse }

    /// A request for a stream path (everything but the origin's own endpoints and `other`).
    var isStreamRequest: Bool { self != .metrics && self != .other }
}

/// The origin's cumulative counts since it started, as plain integers (cheap to bump under
/// the metrics lock, cheap to copy once a second); the difference of two is one interval's
/// activity.
struct OriginCounts: Sendable, Equatable {
    static let operations = OriginOperation.allCases

    /// Requests answered, by operation: `requests[operation.ordinal]`.
    var requests = [Int](repeating: 0, count: operations.count)
    /// Request body bytes received, response body bytes sent (SSE events included).
    var requestBytes = 0
    var responseBytes = 0
    /// Appends that added data, and the bytes appended (initial `PUT` bodies included), as
    /// `ds_origin_appends_total` and `ds_origin_appended_bytes_total` count them.
    var appends = 0
    var appendedBytes = 0
    /// Answers with a 4xx status, and with a 5xx status.
    var clientErrors = 0
    var serverErrors = 0

    func requests(_ operation: OriginOperation) -> Int { requests[operation.ordinal] }

    /// Every request answered.
    var allRequests: Int { requests.reduce(0, &+) }
    /// Requests for stream paths (`OriginOperation.isStreamRequest`).
    var streamRequests: Int { Self.operations.filter(\.isStreamRequest).reduce(0) { $0 &+ requests($1) } }
    /// Catch-up reads, long-polls and SSE responses.
    var reads: Int { Self.operations.filter(\.isRead).reduce(0) { $0 &+ requests($1) } }

    /// `self - earlier`, field by field: one interval's counts.
    func since(_ earlier: OriginCounts) -> OriginCounts {
        var delta = self
        delta.add(earlier, sign: -1)
        return delta
    }

    mutating func add(_ other: OriginCounts, sign: Int = 1) {
        for index in requests.indices { requests[index] &+= sign &* other.requests[index] }
        requestBytes &+= sign &* other.requestBytes
        responseBytes &+= sign &* other.responseBytes
        appends &+= sign &* other.appends
        appendedBytes &+= sign &* other.appendedBytes
        clientErrors &+= sign &* other.clientErrors
        serverErrors &+= sign &* other.serverErrors
    }
}

/// What the origin held at one instant: the gauges sampled with each interval.
struct OriginGauges: Sendable, Equatable {
    var openConnections = 0
    var openLongPolls = 0
    var openSSE = 0
    var streams = 0
}

/// One interval of the origin's history: its counts and the gauges at its end.
struct OriginSample: HistorySample, Equatable {
    var counts: OriginCounts
    var gauges: OriginGauges

    mutating func absorb(_ later: OriginSample) {
        counts.add(later.counts)
        gauges = later.gauges
    }
}
