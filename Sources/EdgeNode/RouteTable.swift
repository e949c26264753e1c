import DurableStreams

/// Which `[[route]]` a request path belongs to: the route with the longest prefix of the path,
/// unless the path is under the stream prefix, whose requests are always the edge's own. One
/// rule for everything that must agree on it (`EdgeService`, and in verify mode which
/// authorization a request gets, `SplitResponder`). Pure: matching is tested without a
/// server.
struct RouteTable<Target: Sendable>: Sendable {
    /// Longest prefix first, so the first match is the most specific.
    private let entries: [(prefix: String, target: Target)]
    let streamPathPrefix: String

    init(_ entries: [(prefix: String, target: Target)], streamPathPrefix: String) {
        self.entries = entries.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.streamPathPrefix = streamPathPrefix
    }

    var isEmpty: Bool { entries.isEmpty }

    /// The target for a request path (the target without its query), or `nil` when no route
    /// takes it. Compared as bytes: the prefix is matched against the path as the client wrote
    /// it, the same text the route's upstream receives.
    func target(forPath path: Substring) -> Target? {
        guard !entries.isEmpty, !path.utf8.starts(with: streamPathPrefix.utf8) else { return nil }
        return entries.first { path.utf8.starts(with: $0.prefix.utf8) }?.target
    }

    /// The target for a request target (`/path?query`).
    func target(forURI uri: String) -> Target? {
        target(forPath: RequestTarget(uri).path)
    }
}
