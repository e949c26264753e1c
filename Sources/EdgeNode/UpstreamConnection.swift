import NIOCore
import NIOHTTP1

/// One established connection: its channel and the handler that runs exchanges on it.
final class UpstreamConnection: Sendable {
    let id: Int
    let channel: any Channel
    let handler: NIOLoopBound<UpstreamConnectionHandler>

    init(id: Int, channel: any Channel, handler: NIOLoopBound<UpstreamConnectionHandler>) {
        self.id = id
        self.channel = channel
        self.handler = handler
    }

    func start(_ target: UpstreamExchangeTarget, head: HTTPRequestHead, body: ByteBuffer?) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.start(target, head: head, body: body) }
    }

    /// Drops the connection if it is still running `request`'s exchange.
    func abort(_ request: UpstreamPendingRequest) {
        let handler = self.handler
        let id = ObjectIdentifier(request)
        channel.eventLoop.execute { handler.value.abort(id) }
    }

    func shutdown() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.shutdown() }
    }
}
