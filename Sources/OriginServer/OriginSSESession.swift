import DurableStreams
import NIOCore
import ServerSupport
import StreamStore

/// One `live=sse` response (§5.8): reads from the store, renders events, waits for appends,
/// and closes after the reconnect interval or at the end of a closed stream. Confined to the
/// connection's event loop. It reads only while the client has taken everything sent so far,
/// so a slow client costs at most one chunk of buffered output.
final class OriginSSESession: SSESession {
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
    /// Counted as a live reader (from `start` until `stop`).
    private var counted = false

    init(service: StreamService, path: String, start: ReadStart, clientCursor: String?, base64: Bool, loop: any EventLoop) {
        self.service = service
        self.path = path
        self.next = start
        self.base64 = base64
        self.loop = loop
        self.cursorFloor = service.cursor(after: clientCursor.map { Substring($0) })
    }

    /// Starts streaming into `output`, after the response head has been written.
    func start(_ output: any SSEOutput) {
        self.output = output
        if !finished {
            counted = true
            service.metrics.liveReaderStarted(path, .sse)
        }
        reconnectTimer = loop.assumeIsolated().scheduleTask(in: service.configuration.sseReconnectInterval) { [weak self] in
            self?.stop()
        }
        pump()
    }

    /// The client took what was sent: resume reading if we paused for it.
    func drained() {
        pump()
    }

    /// Ends the response now (reconnect interval, server shutdown).
    func stop() {
        guard !finished else { return }
        finished = true
        reconnectTimer?.cancel()
        if let waiting { service.store.cancel(waiting) }
        if counted { service.metrics.liveReaderEnded(path, .sse) }
        output?.finish()
    }

    /// The client went away: release everything without writing.
    func cancel() {
        output = nil
        stop()
    }

    private func pump() {
        guard !finished, !reading, waiting == nil, let output, output.backlog == 0 else { return }
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
            service.metrics.sent(bytes: events.readableBytes, stream: path)
            _ = output?.send(events)
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
