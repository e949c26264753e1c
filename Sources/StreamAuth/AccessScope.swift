/// What a credential may do, each level including the ones below it: `read` (GET, HEAD),
/// `write` (also PUT and POST: create, fork, append, close) and `admin` (also DELETE, and the
/// operational endpoints when they are protected).
public enum AccessScope: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    case read = 1
    case write = 2
    case admin = 3

    public init?(name: String) {
        switch name {
        case "read": self = .read
        case "write": self = .write
        case "admin": self = .admin
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .read: return "read"
        case .write: return "write"
        case .admin: return "admin"
        }
    }

    public static func < (lhs: AccessScope, rhs: AccessScope) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One permission: a scope on the streams whose names start with `prefix` (`""`: every stream).
public struct Grant: Hashable, Sendable {
    public var scope: AccessScope
    public var prefix: String

    public init(_ scope: AccessScope, prefix: String = "") {
        self.scope = scope
        self.prefix = prefix
    }

    /// Whether this grant allows `scope` on the stream named `stream` (its canonical name, as
    /// `StreamPath.canonicalName` gives it), or on the server's own endpoints when `stream` is nil.
    public func allows(_ scope: AccessScope, on stream: String?) -> Bool {
        guard self.scope >= scope else { return false }
        guard let stream else { return prefix.isEmpty }
        // Bytes, as stream names are compared everywhere else (String.hasPrefix would take
        // canonically equivalent spellings for equal).
        return stream.utf8.starts(with: prefix.utf8)
    }
}

/// Who made a request, as its credentials say, and what they may do.
public struct Principal: Hashable, Sendable {
    /// A name for logs: the key's name, or the token's subject.
    public var name: String
    public var grants: [Grant]
    /// Until when this principal may be used without checking its credential again, in seconds
    /// since 1970: a verified token's `exp`, capped by how long verified tokens are remembered.
    public var expiresAt: Double?

    public init(name: String, grants: [Grant], expiresAt: Double? = nil) {
        self.name = name
        self.grants = grants
        self.expiresAt = expiresAt
    }

    public func allows(_ scope: AccessScope, on stream: String?) -> Bool {
        grants.contains { $0.allows(scope, on: stream) }
    }
}
