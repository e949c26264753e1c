import DurableStreams
import NIOHTTP1

/// What every response of both servers carries for browsers (§12.7): no content sniffing,
/// readable cross-origin, and the protocol's headers exposed to scripts. The edge adds them to
/// the answers it makes itself (its errors, its SSE heads), so a browser behind an edge sees a
/// 502 as it would see the origin's 404 rather than an opaque failure.
public enum BrowserHeaders {
    public static let all: [(String, String)] = [
        ("X-Content-Type-Options", "nosniff"),
        ("Cross-Origin-Resource-Policy", "cross-origin"),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", HeaderName.exposedToBrowsers.joined(separator: ", ")),
    ]

    public static let headers = HTTPHeaders(all)
}
