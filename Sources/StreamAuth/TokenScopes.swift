/// The `scope` claim of a token, as this server reads it: space-separated entries of the form
/// `read`, `write` or `admin` (every stream) or `read:<prefix>`, `write:<prefix>`,
/// `admin:<prefix>` (the streams whose names start with the prefix). Entries this server does not
/// know (`openid`, `profile`, …) grant nothing, so one token can serve several services.
public enum TokenScopes {
    public static func grants(_ claim: String) -> [Grant] {
        claim.split(separator: " ", omittingEmptySubsequences: true).compactMap { entry -> Grant? in
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let scope = AccessScope(name: String(parts[0])) else { return nil }
            guard parts.count == 2 else { return Grant(scope) }
            // `read:` with nothing after it (an empty template value, say) grants nothing rather than everything.
            return parts[1].isEmpty ? nil : Grant(scope, prefix: String(parts[1]))
        }
    }
}
