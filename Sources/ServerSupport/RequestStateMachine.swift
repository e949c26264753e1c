import DurableStreams
import NIOCore
import NIOHTTP1

/// The life of one request on a connection, as a plain value: collect the head and a bounded
/// body, hand the request over, then wait for the response before the next one (the pipelining
/// handler in front holds pipelined requests back until then). The connection handler feeds it
/// events and carries out the actions it returns.
public struct RequestStateMachine: Sendable {
    public enum State: Sendable {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The request was refused before its body ended; the rest of it is dropped.
        case discarding
        case responding
    }

    public enum Action: Equatable, Sendable {
        case none
        /// Hand the complete request to the service.
        case process(HTTPRequestHead, ByteBuffer)
        /// Answer with this error and close the connection once it is written.
        case rejectAndClose(ProtocolError)
    }

    public let maxBodyBytes: Int
    public private(set) var state = State.idle

    public init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    public mutating func receivedHead(_ head: HTTPRequestHead) -> Action {
        guard case .idle = state else { return protocolViolation() }
        if let problem = Self.hostProblem(head) {
            state = .discarding
            return .rejectAndClose(ProtocolError(.badRequest, problem))
        }
        if let declared = head.headers.first(name: "Content-Length").flatMap(Int.init), declared > maxBodyBytes {
            state = .discarding
            return .rejectAndClose(tooLarge)
        }
        state = .receiving(head, ByteBuffer())
        return .none
    }

    public mutating func receivedBody(_ part: ByteBuffer) -> Action {
        switch state {
        case .receiving(let head, var body):
            guard body.readableBytes + part.readableBytes <= maxBodyBytes else {
                state = .discarding
                return .rejectAndClose(tooLarge)
            }
            // Drop the state's reference first so the append does not copy the buffer.
            state = .discarding
            var part = part
            if body.readableBytes == 0 { body = part } else { body.writeBuffer(&part) }
            state = .receiving(head, body)
            return .none
        case .discarding:
            return .none
        case .idle, .responding:
            return protocolViolation()
        }
    }

    public mutating func receivedEnd() -> Action {
        switch state {
        case .receiving(let head, let body):
            state = .responding
            return .process(head, body)
        case .discarding:
            return .none
        case .idle, .responding:
            return protocolViolation()
        }
    }

    /// The request is refused from outside (the server-wide body budget ran out): the rest of
    /// it is dropped.
    public mutating func discard() {
        if case .receiving = state { state = .discarding }
    }

    /// The response to the current request is fully written.
    public mutating func responseCompleted() {
        if case .responding = state { state = .idle }
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request carries exactly one `Host` header, and any request at
    /// most one; a server answers 400 otherwise. Proxies in front rely on this to know which
    /// host a request is for.
    static func hostProblem(_ head: HTTPRequestHead) -> String? {
        let lines = head.headers["Host"]
        // Byte search: String.contains(String) goes through Foundation and was 4 % of a cache hit.
        if lines.count > 1 || lines.first?.utf8.contains(UInt8(ascii: ",")) == true { return "more than one Host header" }
        if lines.isEmpty, head.version.major == 1, head.version.minor >= 1 { return "an HTTP/1.1 request needs a Host header" }
        return nil
    }

    private var tooLarge: ProtocolError {
        ProtocolError(.payloadTooLarge, "request body larger than \(maxBodyBytes) bytes")
    }

    private mutating func protocolViolation() -> Action {
        state = .discarding
        return .rejectAndClose(ProtocolError(.badRequest, "unexpected request part"))
    }
}
