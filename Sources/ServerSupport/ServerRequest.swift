import NIOCore
import NIOHTTP1

/// A complete request as the connection handler hands it to a responder: the head and the whole
/// body (bounded by the responder's `maxBodyBytes`).
public struct ServerRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: ByteBuffer

    public init(head: HTTPRequestHead, body: ByteBuffer) {
        self.head = head
        self.body = body
    }
}
