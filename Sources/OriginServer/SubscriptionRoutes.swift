import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import Subscriptions

/// The reserved control API under `<prefix>__ds/` (§6–7), mapped onto the registry:
///
/// | Request | |
/// |---|---|
/// | `GET __ds/jwks.json` | the webhook signing keys |
/// | `PUT` / `GET` / `DELETE __ds/subscriptions/:id` | create or re-confirm, read, delete |
/// | `POST __ds/subscriptions/:id/streams` | add explicit links |
/// | `DELETE __ds/subscriptions/:id/streams/:path` | remove an explicit link |
/// | `POST __ds/subscriptions/:id/callback` | a webhook handler's acks |
/// | `POST __ds/subscriptions/:id/claim`, `…/ack`, `…/release` | pull-wake workers |
///
/// Answers are JSON, never cached (`no-store`) but the key set (`max-age=300`, §6.5).
struct SubscriptionRoutes {
    let registry: SubscriptionRegistry
    /// The largest control request body: a subscription with its most streams fits easily.
    static let maxBodyBytes = 1 << 20

    /// `name` is the canonical (decoded) name under the prefix, starting `__ds`.
    func respond(method: String, name: String, request: ServerRequest, baseURL: String, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let parts = name.split(separator: "/", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard request.body.readableBytes <= Self.maxBodyBytes else {
            return loop.makeSucceededFuture(Self.error(SubscriptionError(status: 413, code: "INVALID_REQUEST", "control request bodies are at most 1 MiB")))
        }
        let body = Array(request.body.readableBytesView)
        let bearer = Self.bearer(request.head.headers)
        let answer: EventLoopFuture<ServerReply>
        switch (method, parts.count, parts.dropFirst().first) {
        case ("GET", 2, "jwks.json"):
            answer = loop.makeSucceededFuture(Self.json(.ok, registry.signer.jwks, contentType: "application/jwk-set+json", cacheControl: "public, max-age=300"))
        case (_, 3..., "subscriptions"):
            answer = subscription(method: method, id: parts[2], rest: Array(parts.dropFirst(3)), body: body, bearer: bearer, baseURL: baseURL, loop: loop)
        default:
            answer = loop.makeFailedFuture(SubscriptionError(status: 404, code: "NOT_FOUND", "no such control resource under __ds"))
        }
        return answer.flatMapErrorThrowing { error in
            guard let error = error as? SubscriptionError else { throw error }
            return Self.error(error)
        }.recover { _ in
            Self.error(SubscriptionError(status: 500, code: "INTERNAL_ERROR", "internal error"))
        }
    }

    private func subscription(method: String, id: String, rest: [String], body: [UInt8], bearer: String?, baseURL: String, loop: any EventLoop)
        -> EventLoopFuture<ServerReply>
    {
        do throws(SubscriptionError) {
            switch (method, rest.first, rest.count) {
            case ("PUT", nil, 0):
                let configuration = try SubscriptionConfiguration.parse(body)
                return registry.put(id, configuration, baseURL: baseURL, on: loop).map { created, body in
                    Self.json(created ? .created : .ok, body)
                }
            case ("GET", nil, 0):
                return loop.makeSucceededFuture(Self.json(.ok, try registry.get(id, baseURL: baseURL)))
            case ("DELETE", nil, 0):
                return registry.delete(id, on: loop).map { Self.noContent }
            case ("POST", "streams", 1):
                struct Request: Decodable { var streams: [String] }
                guard let request = try? JSONDecoder().decode(Request.self, from: Data(body)) else {
                    throw SubscriptionError(status: 400, code: "INVALID_REQUEST", "the body must be {\"streams\": [paths]}")
                }
                let paths = try SubscriptionConfiguration.streamPaths(request.streams)
                return registry.addStreams(id, paths, on: loop).map { Self.noContent }
            case ("DELETE", "streams", 2):
                return registry.removeStream(id, rest[1], on: loop).map { Self.noContent }
            case ("POST", "callback", 1):
                return registry.callback(id, bearer: bearer, body: body, on: loop).map { Self.json(.ok, $0) }
            case ("POST", "claim", 1):
                return registry.claim(id, body: body, on: loop).map { Self.json(.ok, $0) }
            case ("POST", "ack", 1):
                return registry.ack(id, bearer: bearer, body: body, on: loop).map { Self.json(.ok, $0) }
            case ("POST", "release", 1):
                return registry.release(id, bearer: bearer, body: body, on: loop).map { Self.noContent }
            case (_, nil, 0), (_, "streams", _), (_, "callback", 1), (_, "claim", 1), (_, "ack", 1), (_, "release", 1):
                throw SubscriptionError(status: 405, code: "METHOD_NOT_ALLOWED", "\(method) is not allowed here")
            default:
                throw SubscriptionError(status: 404, code: "NOT_FOUND", "no such subscription resource")
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    static func bearer(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "Authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    static let noContent = ServerReply.response(ResponseHeaders.head(.noContent, [("Cache-Control", ResponseHeaders.noStore)]), body: [])

    static func json(_ status: HTTPResponseStatus, _ body: [UInt8], contentType: String = "application/json", cacheControl: String = ResponseHeaders.noStore) -> ServerReply {
        .response(ResponseHeaders.head(status, [
            ("Content-Type", contentType), ("Content-Length", String(body.count)), ("Cache-Control", cacheControl),
        ]), body: [ByteBuffer(bytes: body)])
    }

    static func error(_ error: SubscriptionError) -> ServerReply {
        var reply = json(HTTPResponseStatus(statusCode: error.status), error.body)
        if error.status == 405, case .response(var head, let body) = reply {
            head.headers.add(name: "Allow", value: "GET, PUT, POST, DELETE")
            reply = .response(head, body: body)
        }
        return reply
    }
}
