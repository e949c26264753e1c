import DurableStreams

/// What a request needs its credentials to allow, decided from its method, path and headers
/// alone: pure, so every case is testable without a server.
public struct AccessRequirement: Equatable, Sendable {
    /// Each (scope, stream) the request touches; `stream == nil` is the server's own endpoints.
    public var needs: [Need]
    /// No credentials needed (CORS preflights, health checks, public metrics).
    public var isPublic: Bool { needs.isEmpty }

    public struct Need: Equatable, Sendable {
        public var scope: AccessScope
        public var stream: String?
    }

    public static let open = AccessRequirement(needs: [])

    /// - Parameters:
    ///   - operationalPaths: the server's own endpoints that `operationalScope` protects
    ///     (`/metrics`; at an edge also its stats and dashboard); `nil` scope leaves them public.
    ///   - healthScope: what `/healthz` and `/readyz` need (`nil`: nothing).
    ///   - otherPathsScope: what any other path needs (`nil`: nothing). An edge that checks
    ///     credentials itself sets it, so that nothing it would pass upstream unchecked (a path
    ///     another proxy might normalise into a stream's) gets there without credentials.
    ///   - header: a request header by name (case-insensitive).
    public static func of(
        method: String, path: Substring, prefix: String, operationalPaths: Set<String> = ["/metrics"],
        operationalScope: AccessScope?, healthScope: AccessScope? = nil, otherPathsScope: AccessScope? = nil,
        header: (String) -> String?
    ) -> AccessRequirement {
        // A browser's preflight carries no credentials by design; it reveals nothing.
        if method == "OPTIONS" { return .open }
        guard path.utf8.starts(with: prefix.utf8) else {
            if operationalPaths.contains(String(path)) {
                return operationalScope.map { AccessRequirement(needs: [Need(scope: $0, stream: nil)]) } ?? .open
            }
            if path == "/healthz" || path == "/readyz" {
                return healthScope.map { AccessRequirement(needs: [Need(scope: $0, stream: nil)]) } ?? .open
            }
            return otherPathsScope.map { AccessRequirement(needs: [Need(scope: $0, stream: nil)]) } ?? .open
        }
        // A path that names no stream is refused by the server itself (400); whoever asks may
        // learn that, as long as the request needs at least read access to the whole server.
        guard let stream = try? StreamPath.canonicalName(urlPath: path, prefix: prefix) else {
            return AccessRequirement(needs: [Need(scope: .read, stream: "")])
        }
        if stream == "__ds" || stream.hasPrefix("__ds/") {
            return reserved(method: method, name: stream)
        }
        switch method {
        case "GET", "HEAD":
            return AccessRequirement(needs: [Need(scope: .read, stream: stream)])
        case "PUT":
            var needs = [Need(scope: .write, stream: stream)]
            // A fork reads its source: creating one must not reveal a stream the caller may not read.
            if let source = header(ForkRequest.sourceHeader) {
                let name = try? StreamPath.canonicalName(urlPath: Substring(source), prefix: prefix)
                needs.append(Need(scope: .read, stream: name ?? ""))
            }
            return AccessRequirement(needs: needs)
        case "POST":
            return AccessRequirement(needs: [Need(scope: .write, stream: stream)])
        default:
            // DELETE, and anything else (the server answers 405 to what it does not know).
            return AccessRequirement(needs: [Need(scope: .admin, stream: stream)])
        }
    }

    /// The reserved control paths (§6): the webhook key set is public; a wake's callback, ack
    /// and release carry the subscription's own token, which the server checks itself; reading
    /// a subscription needs `read`, claiming its wake `write`, anything that changes it `admin`,
    /// each on the name `__ds/subscriptions/<id>` (so a prefix scope can grant a family of ids).
    static func reserved(method: String, name: String) -> AccessRequirement {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2, parts[1] == "jwks.json", method == "GET" || method == "HEAD" { return .open }
        guard parts.count >= 3, parts[1] == "subscriptions" else {
            return AccessRequirement(needs: [Need(scope: .read, stream: name)])
        }
        let resource = parts[0...2].joined(separator: "/")
        if parts.count == 4, method == "POST", ["callback", "ack", "release"].contains(parts[3]) { return .open }
        if parts.count == 4, method == "POST", parts[3] == "claim" {
            return AccessRequirement(needs: [Need(scope: .write, stream: resource)])
        }
        if parts.count == 3, method == "GET" || method == "HEAD" {
            return AccessRequirement(needs: [Need(scope: .read, stream: resource)])
        }
        return AccessRequirement(needs: [Need(scope: .admin, stream: resource)])
    }

    /// Whether `principal` may make the request.
    public func isSatisfied(by principal: Principal) -> Bool {
        needs.allSatisfy { principal.allows($0.scope, on: $0.stream) }
    }
}
