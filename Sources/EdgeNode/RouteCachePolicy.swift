import DurableStreams
import NIOCore
import NIOHTTP1

/// When a `[[route]]` answer may be kept and served to others. A route's upstream is an
/// application the edge knows nothing about, so the rule is narrow: only what the answer itself
/// declares shareable, and only for requests that carry nothing personal. Pure.
enum RouteCachePolicy {
    /// Longest freshness lifetime honoured, whatever the answer asks for.
    static let maxLifetimeSeconds: Int64 = 365 * 24 * 3600

    /// The cache key for a request whose answer may come from or go into the cache, or `nil`
    /// when it must pass: only a bodiless GET without `Authorization` or `Cookie` (its answer
    /// could be personal), without `Range` (a part is not the whole), and without a client's
    /// `Cache-Control: no-cache` / `no-store` or `Pragma: no-cache` (it asked for a fresh one).
    ///
    /// The key is the method, `Host` and the whole target, plus the request's
    /// `Accept-Encoding`: an answer that varies by encoding (the only `Vary` allowed) must not
    /// reach a client that cannot decode it.
    static func key(for head: HTTPRequestHead, bodyBytes: Int) -> String? {
        guard head.method == .GET, bodyBytes == 0 else { return nil }
        let headers = head.headers
        for name in ["Authorization", "Cookie", "Range"] where headers.contains(name: name) { return nil }
        if directives(headers[canonicalForm: "Cache-Control"]).contains(where: { $0.name == "no-cache" || $0.name == "no-store" }) {
            return nil
        }
        if directives(headers[canonicalForm: "Pragma"]).contains(where: { $0.name == "no-cache" }) { return nil }
        let hosts = headers["Host"]
        guard hosts.count <= 1 else { return nil }
        let encodings = headers["Accept-Encoding"].joined(separator: ",")
        // Header values cannot hold a newline, so the parts cannot run into each other.
        return "GET\n\(hosts.first ?? "")\n\(head.uri)\n\(encodings)"
    }

    /// How long a GET answer stays fresh, counted from when it was made (`Age` subtracted by the
    /// caller), or `nil` when it must not be cached: it is a 200 whose `Cache-Control` says
    /// `public` and a positive `s-maxage` (preferred, as for any shared cache) or `max-age`,
    /// with neither `private`, `no-store` nor `no-cache`; it sets no cookie; and it varies by
    /// nothing but `Accept-Encoding`.
    static func lifetime(status: HTTPResponseStatus, headers: HTTPHeaders) -> TimeAmount? {
        guard status == .ok, !headers.contains(name: "Set-Cookie") else { return nil }
        for value in headers[canonicalForm: "Vary"] {
            for token in value.split(separator: ",") where !HeaderName.equalIgnoringCase(String(token.trimmingASCII(" \t")), "accept-encoding") {
                return nil
            }
        }
        let control = directives(headers[canonicalForm: "Cache-Control"])
        guard control.contains(where: { $0.name == "public" }),
            !control.contains(where: { ["private", "no-store", "no-cache"].contains($0.name) })
        else { return nil }
        // A shared cache goes by `s-maxage` when there is one, even `s-maxage=0`.
        let declared = control.first { $0.name == "s-maxage" } ?? control.first { $0.name == "max-age" }
        guard let declared, let lifetime = seconds(declared.value), lifetime > 0 else { return nil }
        return .seconds(lifetime)
    }

    /// The answer's `Age` in seconds (0 when absent or unreadable).
    static func age(_ headers: HTTPHeaders) -> Int64 {
        headers.first(name: "Age").flatMap { seconds(Substring($0)) } ?? 0
    }

    /// `Cache-Control`-style directives, names lowercased, values unquoted.
    static func directives(_ values: [Substring]) -> [(name: String, value: Substring)] {
        var result: [(name: String, value: Substring)] = []
        for value in values {
            for part in value.split(separator: ",") {
                let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = pieces[0].trimmingASCII(" \t").lowercased()
                guard !name.isEmpty else { continue }
                var argument = pieces.count > 1 ? pieces[1].trimmingASCII(" \t") : ""
                if argument.count >= 2, argument.first == "\"", argument.last == "\"" { argument = argument.dropFirst().dropLast() }
                result.append((name, argument))
            }
        }
        return result
    }

    /// Delta-seconds (RFC 9111 §1.2.2): digits only; beyond `maxLifetimeSeconds` counts as it.
    static func seconds(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        guard text.utf8.count <= 12, let value = Int64(text) else { return maxLifetimeSeconds }
        return min(value, maxLifetimeSeconds)
    }
}
