// TEMPORARY until the webhook transport lands.
public struct WebhookURL: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int
    public var target: String
    public var isTLS: Bool { scheme == "https" }
    public var description: String
    public static func parse(_ text: String) throws(SubscriptionError) -> WebhookURL {
        guard text.hasPrefix("http://127.0.0.1:") else { throw SubscriptionError(status: 400, code: "WEBHOOK_URL_REJECTED", "no") }
        let rest = text.dropFirst("http://127.0.0.1:".count)
        let port = Int(rest.prefix { $0.isNumber }) ?? 80
        let target = String(rest.drop { $0.isNumber })
        return WebhookURL(scheme: "http", host: "127.0.0.1", port: port, target: target.isEmpty ? "/" : target, description: text)
    }
}
import NIOCore
import NIOPosix
import NIOSSL
public struct WebhookResponse: Sendable { public var status: Int; public var body: [UInt8] }
public final class WebhookClient: Sendable {
    let group: any EventLoopGroup
    public init(group: any EventLoopGroup, threadPool: NIOThreadPool, trustRoots: NIOSSLTrustRoots = .default, resolve: (@Sendable (_ host: String, _ port: Int) throws -> [SocketAddress])? = nil) { self.group = group }
    public func post(_ url: WebhookURL, headers: [(String, String)], body: [UInt8], timeout: TimeAmount) -> EventLoopFuture<WebhookResponse> {
        group.next().makeFailedFuture(SubscriptionError(status: 500, code: "STUB", "stub"))
    }
}
