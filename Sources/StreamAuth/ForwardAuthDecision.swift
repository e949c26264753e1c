import NIOHTTP1

/// What forward auth decided about one check.
public enum ForwardAuthDecision: Equatable, Sendable {
    /// The endpoint answered 2xx.
    case allowed
    /// The endpoint answered 401 (`unauthorized`) or 403, with the `WWW-Authenticate` values
    /// it sent, to be passed on to the client.
    case refused(unauthorized: Bool, challenges: [String])
    /// No decision (another status, no connection, no answer in time): the request is refused
    /// with 503, never let through. Not remembered; the reason is short and for the client.
    case failed(String)
    /// Too many checks in flight; the request is refused with 503 without asking.
    case busy

    /// At most this many `WWW-Authenticate` values, of at most this many bytes together, are
    /// kept from an answer (each decision is cached, 10,000 of them).
    static let maxChallenges = 4
    static let maxChallengeBytes = 1024

    /// The decision an answer from the endpoint means.
    public init(status: HTTPResponseStatus, headers: HTTPHeaders) {
        switch status.code {
        case 200..<300:
            self = .allowed
        case 401, 403:
            var challenges = Array(headers["WWW-Authenticate"].prefix(Self.maxChallenges))
            if challenges.reduce(0, { $0 + $1.utf8.count }) > Self.maxChallengeBytes { challenges = [] }
            self = .refused(unauthorized: status.code == 401, challenges: challenges)
        default:
            self = .failed("authorization service answered \(status.code)")
        }
    }

    /// Only answers are remembered; a failure is tried again by the next request.
    public var isCacheable: Bool {
        switch self {
        case .allowed, .refused: return true
        case .failed, .busy: return false
        }
    }
}
