import DurableStreams
import NIOCore
import NIOHTTP1

/// Reads a whole pre-filled stream from `-1`, chunk by chunk as the server cuts it, until
/// `Stream-Up-To-Date`; checks the pass saw every message once, in order; starts again.
/// Latency here is per request: sent → response complete.
final class CatchUpReader: ReaderSession, @unchecked Sendable {
    /// Messages per writer in the pre-filled stream: what every pass must see.
    private let streamCounts: [Int]
    private var passes = DeliveryAudit()

    init(context: ReaderContext, loop: EventLoop, streamCounts: [Int]) {
        self.streamCounts = streamCounts
        super.init(context: context, loop: loop, offset: "-1")
    }

    override func nextRequest() -> (uri: String, kind: RequestClass) {
        ("\(context.path)?offset=\(offset)", .catchUp)
    }

    override func responseComplete(head: HTTPResponseHead, body: ByteBuffer) {
        guard head.status.code == 200 else { return retryAfterError(status: Int(head.status.code)) }
        let elapsed = now() - requestSentAt
        context.counters.update { $0.latency.record(nanoseconds: elapsed) }
        deliver(body.readableBytesView, timed: false)
        follow(head.headers)
        markReady()
        if HeaderName.isTrue(head.headers.first(name: HeaderName.upToDate)) {
            passes = passes + ledger.audit(expected: streamCounts.map { ExpectedRange(start: 0, end: $0) })
            ledger = DeliveryLedger(stream: context.stream, writers: context.writers)
            lines = MessageLineSplitter()
            offset = "-1"
        }
        sendNext()
    }

    /// Only whole passes count: the one the end of the run interrupted is dropped.
    override func audit() -> DeliveryAudit { passes }
}
