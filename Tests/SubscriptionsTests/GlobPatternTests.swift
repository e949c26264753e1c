import Subscriptions
import Testing

@Suite("Subscriptions: glob patterns (§6.2)")
struct GlobPatternTests {
    @Test(arguments: [
        ("events/*", "events/abc", true),
        ("events/*", "events", false),
        ("events/*", "events/a/b", false),
        ("events/**", "events", true),
        ("events/**", "events/a/b/c", true),
        ("**", "anything/at/all", true),
        ("**/x", "x", true),
        ("**/x", "a/b/x", true),
        ("**/x", "a/b/y", false),
        ("a/**/z", "a/z", true),
        ("a/**/z", "a/b/c/z", true),
        ("a/**/z", "a/b/c/y", false),
        ("a/*/c", "a/b/c", true),
        ("a/*/c", "a/b/d", false),
        ("logs-*", "logs-2026", true),
        ("logs-*", "logs-", true),
        ("logs-*", "log-2026", false),
        ("*-*-x", "a-b-x", true),
        ("*-*-x", "ab-x", false),
        ("exact/name", "exact/name", true),
        ("exact/name", "exact/Name", false),
        ("**/**/a", "a", true),
    ])
    func matching(pattern: String, path: String, expected: Bool) throws {
        let glob = try #require(GlobPattern(pattern))
        #expect(glob.matches(path) == expected)
    }

    @Test(arguments: ["", "a//b", "/a", "a/", "a/x**", "**x", "a\u{1}b", String(repeating: "a", count: 1025)])
    func invalidPatternsAreRefused(pattern: String) {
        #expect(GlobPattern(pattern) == nil)
    }

    /// Many `**` against a long path: the simulation stays linear, no backtracking blow-up.
    @Test func manyAnyDepthSegmentsStayCheap() throws {
        let glob = try #require(GlobPattern(Array(repeating: "**/a", count: 100).joined(separator: "/") + "/b"))
        let path = Array(repeating: "a", count: 500).joined(separator: "/")
        #expect(!glob.matches(path))
    }
}
