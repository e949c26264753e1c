import DurableStreams
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Writes an access-log line for every request `inner` answers, refusals included.
public struct AccessLogResponder: HTTPResponder {
    public let inner: any HTTPResponder
    public let log: AccessLog

    public init(_ inner: any HTTPResponder, log: AccessLog) {
        self.inner = inner
        self.log = log
    }

    public var maxBodyBytes: Int { inner.maxBodyBytes }
    public func connectionOpened() { inner.connectionOpened() }
    public func connectionClosed() { inner.connectionClosed() }
    public func refusal(_ error: ProtocolError) -> ServerReply { inner.refusal(error) }

    public func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        let started = Date().timeIntervalSince1970
        let clock = DispatchTime.now().uptimeNanoseconds
        let head = request.head
        return inner.respond(to: request, live: live, on: loop).map { [log] reply in
            log.record(AccessLogEntry(
                time: started, method: head.method.rawValue, uri: head.uri, status: Int(reply.status.code), bytes: reply.bodyBytes,
                milliseconds: Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e6, cache: reply.cacheOutcome,
                principal: live.principal))
            return reply
        }
    }
}

extension ServerReply {
    /// The `X-Cache` value an edge gave this reply, if any.
    var cacheOutcome: String? {
        if case .encoded(_, let extra) = self { return extra.value(of: "X-Cache") }
        return head.headers.first(name: "X-Cache")
    }
}

/// Whether the server takes new work: `/readyz` answers 200 until a drain begins, then 503, so
/// a load balancer stops sending requests before the server stops taking them.
public final class Readiness: Sendable {
    private let draining = NIOLockedValueBox(false)
    public init() {}
    public var isDraining: Bool { draining.withLockedValue { $0 } }
    public func beginDraining() { draining.withLockedValue { $0 = true } }
}

/// Answers `GET /readyz` and `HEAD /readyz` from `readiness`; everything else goes to `inner`.
public struct ReadinessResponder: HTTPResponder {
    public let inner: any HTTPResponder
    public let readiness: Readiness

    public init(_ inner: any HTTPResponder, readiness: Readiness) {
        self.inner = inner
        self.readiness = readiness
    }

    public var maxBodyBytes: Int { inner.maxBodyBytes }
    public func connectionOpened() { inner.connectionOpened() }
    public func connectionClosed() { inner.connectionClosed() }
    public func refusal(_ error: ProtocolError) -> ServerReply { inner.refusal(error) }

    public func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        guard request.head.uri == "/readyz", request.head.method == .GET || request.head.method == .HEAD else {
            return inner.respond(to: request, live: live, on: loop)
        }
        let draining = readiness.isDraining
        let body = ByteBuffer(string: draining ? "draining\n" : "ready\n")
        var headers: HTTPHeaders = [
            "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        if draining { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: draining ? .serviceUnavailable : .ok, headers: headers)
        return .now(.response(head, body: [body]))
    }
}

/// What both servers put around their responder: `/readyz` and the access log, with the state
/// they keep while the server runs.
public final class ServerOperations: Sendable {
    public let readiness = Readiness()
    /// Written until the server stops, and flushed then.
    private let accessLog = NIOLockedValueBox<AccessLog?>(nil)

    public init() {}

    /// `inner` behind `/readyz`, then `authorize` (so `health_scope` can protect `/readyz`), and
    /// outermost, when `accessLogPath` is set, the access log (opened here), which thus logs
    /// refusals too.
    public func wrap(
        _ inner: any HTTPResponder, accessLogPath: String?, authorize: (any HTTPResponder) throws -> any HTTPResponder = { $0 }
    ) throws -> any HTTPResponder {
        var responder = try authorize(ReadinessResponder(inner, readiness: readiness))
        if let accessLogPath {
            let log = try AccessLog(path: accessLogPath)
            accessLog.withLockedValue { $0 = log }
            responder = AccessLogResponder(responder, log: log)
        }
        return responder
    }

    /// Once the connections are gone: every logged line is written.
    public func finish() {
        accessLog.withLockedValue { $0 }?.flush()
    }
}
