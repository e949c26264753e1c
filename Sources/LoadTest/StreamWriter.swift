import DurableStreams
import NIOCore
import NIOHTTP1

/// Appends numbered messages to one stream on a fixed schedule, straight to the origin, as an
/// idempotent producer: a retried append after a broken connection cannot land twice, so the
/// readers' loss and duplication counts only ever blame the read path.
///
/// Confined to its event loop, like the readers.
final class StreamWriter: ClientConnectionDelegate, @unchecked Sendable {
    struct Plan: Sendable {
        var origin: Target
        var path: String
        var stream: Int
        var writer: Int
        var producerID: String
        var contentType: String
        var messageBytes: Int
        var interval: TimeAmount
        var firstAppend: NIODeadline
        var stopAt: NIODeadline
    }

    private let plan: Plan
    private let loop: EventLoop
    private let acks: AckTable
    private let counters: RunCounters
    /// Succeeds with the number of acknowledged appends when the writer stops.
    let done: EventLoopPromise<Int>

    private var channel: Channel?
    private var seq = 0
    private var due: NIODeadline
    private var responseHead: HTTPResponseHead?
    private var stopped = false
    private var inFlight = false

    init(plan: Plan, loop: EventLoop, acks: AckTable, counters: RunCounters) {
        self.plan = plan
        self.loop = loop
        self.acks = acks
        self.counters = counters
        self.due = plan.firstAppend
        self.done = loop.makePromise()
    }

    func start() {
        // Whatever the origin does (refuses, stalls, answers 5xx), the writer stops on time; an
        // append still unanswered then is not owed to anyone.
        loop.scheduleTask(deadline: plan.stopAt) { self.stop() }
        connect()
    }

    private func connect() {
        guard !stopped else { return }
        ClientConnection.connect(to: plan.origin, on: loop, delegate: self).whenComplete { result in
            switch result {
            case .success(let channel):
                guard !self.stopped else { return channel.close(promise: nil) }
                self.channel = channel
                self.scheduleNext()
            case .failure:
                self.counters.connectionError()
                self.loop.scheduleTask(in: .milliseconds(200)) { self.connect() }
            }
        }
    }

    private func scheduleNext() {
        // A writer that fell behind stops at the deadline too: every run ends on time.
        guard due < plan.stopAt, NIODeadline.now() < plan.stopAt else { return stop() }
        // On schedule, not after the previous answer plus a pause: a slow server must not
        // quietly lower the offered load.
        loop.scheduleTask(deadline: due) { self.append() }
    }

    private func append() {
        guard let channel, !stopped, !inFlight else { return }
        inFlight = true
        responseHead = nil
        let message = LoadMessage(stream: plan.stream, writer: plan.writer, seq: seq)
        acks.sent(stream: plan.stream, writer: plan.writer, seq: seq, at: now())
        ClientConnection.send(
            channel, method: .POST, target: plan.origin, uri: plan.path,
            headers: [
                ("Content-Type", plan.contentType), (HeaderName.producerID, plan.producerID),
                (HeaderName.producerEpoch, "0"), (HeaderName.producerSeq, String(seq)),
            ],
            body: ByteBuffer(bytes: message.encoded(size: plan.messageBytes)))
    }

    private func stop() {
        guard !stopped else { return }
        stopped = true
        channel?.close(promise: nil)
        done.succeed(seq)
    }

    func received(head: HTTPResponseHead) { responseHead = head }
    func received(body: ByteBuffer) {}

    func receivedEnd() {
        guard let head = responseHead else { return }
        inFlight = false
        if (200..<300).contains(head.status.code) {
            acks.acknowledged(stream: plan.stream, writer: plan.writer, seq: seq, at: now())
            counters.update { $0.appends += 1 }
            seq += 1
            due = due + plan.interval
            scheduleNext()
        } else {
            counters.update {
                $0.failedAppends += 1
                $0.statuses[Int(head.status.code), default: 0] += 1
            }
            // Same sequence number again: the producer headers make the retry safe.
            loop.scheduleTask(in: .milliseconds(100)) { self.append() }
        }
    }

    func connectionClosed() {
        channel = nil
        inFlight = false
        guard !stopped else { return }
        counters.connectionError()
        loop.scheduleTask(in: .milliseconds(200)) { self.connect() }
    }
}
