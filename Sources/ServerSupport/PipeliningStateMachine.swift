import NIOCore
import NIOHTTP1

/// HTTP/1.1 pipelining as a plain value: a client may send its next request before the answer to
/// the current one; the server answers in order, one request at a time. While a response is
/// owed, what arrives is held here and the socket is not read further (so a client that
/// pipelines without end costs at most one read's worth of parts); once the response is
/// written, the held parts are released until the next request is complete.
///
/// `HTTPPipeliningHandler` feeds it events and carries out its actions.
public struct PipeliningStateMachine: Sendable {
    /// What arrives from the decoder: a request part, or the decoder's failure (answered in turn,
    /// after the responses owed before it).
    public enum Inbound: Sendable {
        case part(HTTPServerRequestPart)
        case failure(HTTPParserError)
    }

    /// Whether a response is owed: a request ended and its response has not been written.
    public private(set) var responding = false
    /// What arrived while a response was owed, in order (taken from the front as responses
    /// are written, so a ring rather than an array that shifts on each removal).
    private var held = CircularBuffer<Inbound>()
    /// The handler behind asked to read while a response was owed: read once it is written.
    private var readWanted = false

    public init() {}

    /// Parts waiting for earlier responses.
    public var heldCount: Int { held.count }

    /// Something arrived from the decoder: pass it on now, or hold it.
    public mutating func received(_ inbound: Inbound) -> Inbound? {
        guard !responding, held.isEmpty else {
            held.append(inbound)
            return nil
        }
        note(inbound)
        return inbound
    }

    /// The handler behind asks for more input: read the socket now, or once the response owed
    /// is written.
    public mutating func readRequested() -> Bool {
        guard !responding, held.isEmpty else {
            readWanted = true
            return false
        }
        return true
    }

    /// A response was written. Returns the held parts to pass on now (up to and including the
    /// end of the next complete request) and whether to read the socket afterwards.
    public mutating func responseWritten() -> (release: [Inbound], read: Bool) {
        responding = false
        var release: [Inbound] = []
        while !responding, let next = held.popFirst() {
            note(next)
            release.append(next)
        }
        guard !responding, held.isEmpty, readWanted else { return (release, false) }
        readWanted = false
        return (release, true)
    }

    private mutating func note(_ inbound: Inbound) {
        switch inbound {
        case .part(.end), .failure: responding = true
        case .part: break
        }
    }
}
