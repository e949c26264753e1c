import DurableStreams
import NIOCore
import StreamStore

/// What an SSE response will stream, decided when the request is accepted.
struct SSEPlan: Sendable {
    var path: String
    var start: ReadStart
    var clientCursor: String?
    var base64: Bool
}

/// Where an SSE session writes; implemented by the connection handler.
protocol SSEOutput: AnyObject {
    /// Whether the socket can take more without buffering.
    var isWritable: Bool { get }
    /// Writes and flushes one batch of events.
    func send(_ events: ByteBuffer)
    /// Ends the response and closes the connection.
    func finish()
}

/// One `live=sse` response (§5.8): reads from the store, renders events, waits for appends,
/// and closes after the reconnect interval or at the end of a closed stream. Confined to the
/// connection's event loop. It only reads while the socket is writable, so a slow client costs
/// at most one chunk of buffered output.
final class SSESession {
    private let service: StreamService
    private let path: String
    private let base64: Bool
    private let loop: any EventLoop
    /// A cursor at least as large as any this session may answer (§10.1).
    private let cursorFloor: UInt64

    private var next: ReadStart
    private weak var output: (any SSEOutput)?
    private var sentControl = false
    private var reading = false
    private var waiting: StoreWait?
    private var reconnectTimer: Scheduled<Void>?
    private var finished = false
    private var touched = false

    init(service: StreamService, plan: SSEPlan, loop: any EventLoop) {
        self.service = service
        self.path = plan.path
        self.next = plan.start
        self.base64 = plan.base64
        self.loop = loop
        self.cursorFloor = service.cursor(after: plan.clientCursor.map { Substring($0) })
    }

    /// Starts streaming into `output`, after the response head has been written.
    func start(_ output: any SSEOutput) {
        self.output = output
        service.metrics.openSSE.increment()
        reconnectTimer = loop.assumeIsolated().scheduleTask(in: service.configuration.sseReconnectInterval) { [weak self] in
            self?.stop()
        }
        pump()
    }

    /// The socket drained: resume reading if we paused for it.
    func writabilityChanged() {
        pump()
    }

    /// Ends the response now (reconnect interval, server shutdown).
    func stop() {
        guard !finished else { return }
        finished = true
        reconnectTimer?.cancel()
        if let waiting { service.store.cancel(waiting) }
        service.metrics.openSSE.decrement()
        output?.finish()
    }

    /// The client went away: release everything without writing.
    func cancel() {
        output = nil
        stop()
    }

    private func pump() {
        guard !finished, !reading, waiting == nil, let output, output.isWritable else { return }
        reading = true
        let touch = !touched
        touched = true
        service.store.read(path, from: next, maxBytes: service.configuration.maxChunkBytes, touch: touch, on: loop)
            .assumeIsolated().whenComplete { [self] result in
                reading = false
                switch result {
                case .failure:
                    stop()  // deleted or expired: end the stream; a reconnect will see the 404
                case .success(let read):
                    deliver(read)
                }
            }
    }

    private func deliver(_ read: ReadResult) {
        guard !finished else { return }
        let hasData = read.end > read.start
        next = .offset(read.end)
        if hasData || !sentControl || read.info.closed {
            var events = ByteBuffer()
            if hasData {
                SSEEncoder.writeData(read.body, base64: base64, into: &events)
            }
            let control = SSEEncoder.Control(
                nextOffset: read.end, cursor: read.reachedClosedEnd ? nil : currentCursor(),
                upToDate: read.upToDate, closed: read.reachedClosedEnd)
            SSEEncoder.writeControl(control, into: &events)
            sentControl = true
            service.metrics.bytesOut.increment(by: Int64(events.readableBytes))
            output?.send(events)
        }
        if read.reachedClosedEnd {
            stop()
        } else if read.upToDate {
            waitForMore(after: read.end)
        } else {
            pump()
        }
    }

    private func waitForMore(after offset: StreamOffset) {
        let wait = service.store.waitForChange(path, after: offset, on: loop)
        waiting = wait
        wait.future.assumeIsolated().whenSuccess { [self] _ in
            waiting = nil
            pump()
        }
    }

    private func currentCursor() -> UInt64 {
        max(cursorFloor, service.cursors.interval(at: service.clock()))
    }
}
