import DurableStreams
import NIOCore
import NIOHTTP1

/// What every reader shares: where to read, and where to count.
struct ReaderContext: Sendable {
    let target: Target
    let path: String
    let stream: Int
    let writers: Int
    let counters: RunCounters
    let acks: AckTable
}

/// What a reader reports when it is done.
struct ReaderOutcome: Sendable {
    var audit: DeliveryAudit
    /// True when it left on its own during the run (`mixed`), false when the run ended it.
    var left: Bool
}

/// One reader on its own keep-alive connection: connects, sends one request at a time, checks
/// every message it receives against its ledger, reconnects if the connection breaks.
/// Subclasses say which request comes next and what a response means.
///
/// Confined to its event loop: every method runs there (NIO calls the delegate methods there,
/// and the run reaches readers through `loop.execute`), which is why it can be `@unchecked Sendable`.
class ReaderSession: ClientConnectionDelegate, @unchecked Sendable {
    let context: ReaderContext
    let loop: EventLoop
    var ledger: DeliveryLedger
    var lines = MessageLineSplitter()
    /// The offset the next request reads from; `-1` and `now` until the server names one.
    var offset: String
    var cursor: String?
    /// Per writer, the first sequence number this reader must receive at the latest (it may
    /// legitimately receive from lower, see `LongPollReader`).
    var expectedStart: [Int]
    /// Per writer, how many appends were acknowledged in all; set when the writers stop.
    private(set) var finalCounts: [Int]?
    /// Succeeds once the first response arrived: the reader is in place.
    let ready: EventLoopPromise<Void>
    let outcome: EventLoopPromise<ReaderOutcome>

    /// When the reader joined: messages acknowledged before are history it catches up on, not
    /// live deliveries, and stay out of the latency histogram.
    private var joinedAt: UInt64 = 0
    private var channel: Channel?
    /// The current response said `Connection: close` (SSE responses do): the next request goes
    /// on a new connection, and the close is no error.
    private var closeAfterResponse = false
    private var expectingClose = false
    private var finishing = false
    private var left = false
    private var completed = false
    private var isReady = false
    private(set) var requestSentAt: UInt64 = 0
    private(set) var responseHead: HTTPResponseHead?
    private var responseBody = ByteBuffer()

    init(context: ReaderContext, loop: EventLoop, offset: String) {
        self.context = context
        self.loop = loop
        self.offset = offset
        self.ledger = DeliveryLedger(stream: context.stream, writers: context.writers)
        self.expectedStart = Array(repeating: 0, count: context.writers)
        self.ready = loop.makePromise()
        self.outcome = loop.makePromise()
    }

    // MARK: What subclasses decide

    /// The next request's URI and class.
    func nextRequest() -> (uri: String, kind: RequestClass) {
        fatalError("subclass")
    }

    /// A whole response arrived (subclasses that stream the body override the delegate methods).
    func responseComplete(head: HTTPResponseHead, body: ByteBuffer) {}

    /// The outcome when the reader is done. Live readers audit against what they should have seen.
    func audit() -> DeliveryAudit {
        let ranges = ledger.writers.indices.map { writer -> ExpectedRange in
            let tracker = ledger.writers[writer]
            let start = start(of: writer)
            // A reader that left (or was never told the end) is owed everything up to the
            // newest message it saw; one that stayed, everything that was acknowledged.
            let end = left ? tracker.highest + 1 : (finalCounts?[writer] ?? tracker.highest + 1)
            return ExpectedRange(start: start, end: max(start, end))
        }
        return ledger.audit(expected: ranges)
    }

    // MARK: Life cycle, called on `loop`

    func start() {
        joinedAt = now()
        connect()
    }

    /// The writers stopped after `counts` appends each; finish once all of them arrived.
    func writersFinished(_ counts: [Int]) {
        finalCounts = counts
        finishIfComplete()
    }

    /// Ends the reader now: the run is over, or (`left`) it leaves the stream early.
    func finish(left: Bool = false) {
        guard !finishing else { return }
        finishing = true
        self.left = left
        if let channel {
            channel.close(promise: nil)
        } else {
            complete()
        }
    }

    var isFinishing: Bool { finishing }

    /// Finishes when every message owed has arrived.
    func finishIfComplete() {
        guard let finalCounts, !finishing else { return }
        for writer in finalCounts.indices where !ledger.writers[writer].hasAll(from: start(of: writer), to: finalCounts[writer]) {
            return
        }
        finish()
    }

    /// Where this reader's obligation for `writer` starts: at the bound, or lower if it
    /// received a lower message (then everything from there on is owed).
    private func start(of writer: Int) -> Int {
        min(ledger.writers[writer].first ?? expectedStart[writer], expectedStart[writer])
    }

    func markReady() {
        guard !isReady else { return }
        isReady = true
        ready.succeed(())
    }

    // MARK: Requests

    func sendNext() {
        guard !finishing else { return }
        if closeAfterResponse, let channel {
            closeAfterResponse = false
            expectingClose = true
            channel.close(promise: nil)
            return
        }
        guard let channel else { return }
        let (uri, kind) = nextRequest()
        context.counters.request(kind)
        responseHead = nil
        responseBody.clear()
        requestSentAt = now()
        ClientConnection.send(channel, target: context.target, uri: uri)
    }

    /// An unexpected answer: counted, then the same request again after a pause.
    func retryAfterError(status: Int) {
        context.counters.status(status)
        loop.scheduleTask(in: .milliseconds(200)) { self.sendNext() }
    }

    /// Parses message lines out of `bytes` and records them: latency (acknowledgement, or send
    /// with `latency_from = "send"`, → now) when `timed`, counts always.
    func deliver<Bytes: Collection<UInt8>>(_ bytes: Bytes, timed: Bool = true) where Bytes.Index == Int {
        var messages: [LoadMessage] = []
        let before = ledger.bytes
        lines.feed(bytes) { line in
            if let message = ledger.receive(line: line) { messages.append(message) }
        }
        let bytesReceived = ledger.bytes - before
        guard !messages.isEmpty else { return }
        let receivedAt = now()
        let starts = timed ? context.acks.latencyStarts(stream: context.stream, messages) : []
        context.counters.update { tally in
            tally.messages += messages.count
            tally.bytes += bytesReceived
            for start in starts {
                if let start, start < joinedAt { continue }
                if let start, start < receivedAt {
                    tally.latency.record(nanoseconds: receivedAt - start)
                } else {
                    // Here before its writer heard the acknowledgement: no wait at all. (Timed
                    // from the send, this cannot happen: the send is recorded before it goes.)
                    tally.beforeAck += 1
                    tally.latency.record(nanoseconds: 0)
                }
            }
        }
    }

    /// Takes the position a response names.
    func follow(_ headers: HTTPHeaders) {
        if let next = headers.first(name: HeaderName.nextOffset) { offset = next }
        if let next = headers.first(name: HeaderName.cursor) { cursor = next }
    }

    // MARK: Connection

    private func connect() {
        ClientConnection.connect(to: context.target, on: loop, delegate: self).whenComplete { result in
            switch result {
            case .success(let channel):
                self.context.counters.connectionOpened()
                self.channel = channel
                self.closeAfterResponse = false
                self.expectingClose = false
                if self.finishing { channel.close(promise: nil) } else { self.sendNext() }
            case .failure:
                self.context.counters.connectionError()
                self.reconnectLater()
            }
        }
    }

    private func reconnectLater() {
        loop.scheduleTask(in: .milliseconds(200)) {
            if self.finishing { self.complete() } else { self.connect() }
        }
    }

    private func complete() {
        guard !completed else { return }
        completed = true
        ready.succeed(())
        outcome.succeed(ReaderOutcome(audit: audit(), left: left))
    }

    // MARK: ClientConnectionDelegate

    func received(head: HTTPResponseHead) {
        responseHead = head
        closeAfterResponse = !head.isKeepAlive
    }

    func received(body: ByteBuffer) {
        var body = body
        responseBody.writeBuffer(&body)
    }

    func receivedEnd() {
        guard let head = responseHead else { return }
        responseComplete(head: head, body: responseBody)
    }

    func connectionClosed() {
        guard channel != nil else { return }
        channel = nil
        context.counters.connectionClosed()
        if finishing {
            complete()
        } else if expectingClose {
            expectingClose = false
            connect()
        } else {
            context.counters.connectionError()
            reconnectLater()
        }
    }
}
