import DurableStreams
import NIOCore
import NIOHTTP1

/// Tails a stream the way a client library does: catch-up reads until `Stream-Up-To-Date`, then
/// long-polls, each carrying the offset and cursor of the previous answer exactly.
final class LongPollReader: ReaderSession, @unchecked Sendable {
    private var live = false
    /// Set while the first request asks for `offset=now`.
    private var joiningAtNow: Bool

    init(context: ReaderContext, loop: EventLoop, fromNow: Bool) {
        joiningAtNow = fromNow
        super.init(context: context, loop: loop, offset: fromNow ? "now" : "-1")
    }

    override func nextRequest() -> (uri: String, kind: RequestClass) {
        guard live else { return ("\(context.path)?offset=\(offset)", .catchUp) }
        var uri = "\(context.path)?offset=\(offset)&live=long-poll"
        if let cursor { uri += "&cursor=\(cursor)" }
        return (uri, .longPoll)
    }

    override func responseComplete(head: HTTPResponseHead, body: ByteBuffer) {
        switch head.status.code {
        case 200, 204:
            if head.status.code == 200 { deliver(body.readableBytesView) }
            follow(head.headers)
            if joiningAtNow {
                // The tail this reader starts at was fixed between the request and now. Every
                // message acknowledged by now lies after it, except possibly the one append
                // each writer may still have had in flight.
                joiningAtNow = false
                expectedStart = context.acks.acknowledgedCounts(stream: context.stream).map { $0 + 1 }
            }
            if head.status.code == 204 || HeaderName.isTrue(head.headers.first(name: HeaderName.upToDate)) { live = true }
            markReady()
            if HeaderName.isTrue(head.headers.first(name: HeaderName.closed)) {
                finish()
                return
            }
            finishIfComplete()
            sendNext()
        default:
            retryAfterError(status: Int(head.status.code))
        }
    }
}
