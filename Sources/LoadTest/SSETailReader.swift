import DurableStreams
import Foundation
import NIOCore
import NIOHTTP1

/// Tails a stream with SSE: `data` events carry the bytes (base64 for binary streams), `control`
/// events the next offset and cursor. When the server ends the response, the reader asks again
/// from the last control event's offset, as a client library does.
final class SSETailReader: ReaderSession, @unchecked Sendable {
    private var events = SSEEventSplitter()
    private var base64 = false
    private var streaming = false
    /// Data events since the last control event. They count only once their control event
    /// arrives: the offset to resume from moves then, so data cut off before it is sent again
    /// after a reconnect and must not count twice.
    private var pending: [UInt8] = []
    private let decoder = JSONDecoder()

    init(context: ReaderContext, loop: EventLoop) {
        super.init(context: context, loop: loop, offset: "-1")
    }

    override func nextRequest() -> (uri: String, kind: RequestClass) {
        var uri = "\(context.path)?offset=\(offset)&live=sse"
        if let cursor { uri += "&cursor=\(cursor)" }
        return (uri, .sse)
    }

    override func received(head: HTTPResponseHead) {
        super.received(head: head)
        streaming = head.status.code == 200
        pending.removeAll(keepingCapacity: true)
        guard streaming else { return }
        base64 = head.headers.first(name: HeaderName.sseDataEncoding)?.lowercased() == "base64"
        events = SSEEventSplitter()
    }

    override func received(body: ByteBuffer) {
        guard streaming else { return super.received(body: body) }
        let parsed: [SSEEventSplitter.Event]
        do {
            parsed = try events.feed(body)
        } catch {
            context.counters.update { $0.statuses[0, default: 0] += 1 }
            finish()
            return
        }
        for event in parsed {
            handle(event)
            if isFinishing { return }
        }
    }

    override func receivedEnd() {
        guard let head = responseHead else { return }
        guard streaming else { return retryAfterError(status: Int(head.status.code)) }
        streaming = false
        // The server closed this response (its reconnect interval): continue from the last
        // control event.
        sendNext()
    }

    private func handle(_ event: SSEEventSplitter.Event) {
        switch event.name {
        case "data":
            if base64 {
                guard let bytes = Data(base64Encoded: event.data, options: .ignoreUnknownCharacters) else {
                    context.counters.update { $0.statuses[0, default: 0] += 1 }
                    return
                }
                pending.append(contentsOf: bytes)
            } else {
                pending.append(contentsOf: event.data.utf8)
            }
        case "control":
            guard let data = event.data.data(using: .utf8),
                let control = try? decoder.decode(ControlEvent.self, from: data)
            else { return }
            if !pending.isEmpty {
                deliver(pending)
                pending.removeAll(keepingCapacity: true)
            }
            offset = control.streamNextOffset
            if let next = control.streamCursor { cursor = next }
            markReady()
            if control.streamClosed == true {
                finish()
                return
            }
            finishIfComplete()
        default:
            break
        }
    }

    /// The JSON of an `event: control`.
    private struct ControlEvent: Decodable {
        var streamNextOffset: String
        var streamCursor: String?
        var upToDate: Bool?
        var streamClosed: Bool?
    }
}
