import DurableStreams
import NIOHTTP1
import ServerSupport

/// Builds response heads with the headers every response carries.
enum ResponseHeaders {
    /// Browser safety (§12.7) and CORS exposure of the protocol headers, on every response.
    static let common = BrowserHeaders.headers

    /// Caches may keep a historical read for a minute and serve it stale while revalidating.
    static let cacheable = "public, max-age=60, stale-while-revalidate=300"
    static let noStore = "no-store"

    static func head(_ status: HTTPResponseStatus, _ extra: [(String, String)] = []) -> HTTPResponseHead {
        var headers = common
        headers.add(contentsOf: extra)
        return HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    }
}
