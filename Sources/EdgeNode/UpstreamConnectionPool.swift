import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

// MARK: - Pool

/// The I/O side of `UpstreamClient`: opens connections, runs `UpstreamPoolStateMachine`'s
/// decisions, and tracks the requests and SSE streams in flight. One lock guards the machine and
/// the maps; it is never held while calling out (promises, channels, callbacks).
final class UpstreamConnectionPool: Sendable {
    let host: String
    let port: Int
    let connectTimeout: TimeAmount
    /// The `Host` header value for requests.
    let hostHeader: String
    private let group: any EventLoopGroup
    private let state: NIOLockedValueBox<State>

    /// How many times a request that lost a reused connection before any response is sent again.
    static let maxRetries = 3

    private struct State {
        var machine: UpstreamPoolStateMachine
        var nextID = 0
        /// Requests waiting for a connection, by ID.
        var waiting: [Int: UpstreamPendingRequest] = [:]
        /// Established pool connections, by ID.
        var connections: [Int: UpstreamConnection] = [:]
        /// Dedicated SSE connections, by ID.
        var streams: [Int: UpstreamStreamCore] = [:]
        /// Made by `shutdown`; succeeded once the machine is drained and no stream is left.
        var drained: EventLoopPromise<Void>?
        var drainedSignalled = false

        mutating func makeID() -> Int {
            nextID += 1
            return nextID
        }
    }

    init(host: String, port: Int, group: any EventLoopGroup, maxConnections: Int, maxQueued: Int, connectTimeout: TimeAmount) {
        self.host = host
        self.port = port
        self.group = group
        self.connectTimeout = connectTimeout
        self.hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.state = NIOLockedValueBox(State(machine: UpstreamPoolStateMachine(maxConnections: maxConnections, maxQueued: maxQueued)))
    }

    var stats: (open: Int, idle: Int, queued: Int) {
        state.withLockedValue { ($0.machine.openCount, $0.machine.idleCount, $0.machine.queuedCount) }
    }

    /// The most pooled connections (open or connecting) there have been at once.
    var peakConnections: Int { state.withLockedValue { $0.machine.peakConnections } }

    /// Runs `body` on the state under the lock; returns the shutdown promise to succeed if the
    /// pool just drained.
    private func withState<T>(_ body: (inout State) -> T) -> (T, drainedNow: EventLoopPromise<Void>?) {
        state.withLockedValue { state in
            let result = body(&state)
            if let drained = state.drained, state.machine.isDrained, state.streams.isEmpty, !state.drainedSignalled {
                state.drainedSignalled = true
                return (result, drained)
            }
            return (result, nil)
        }
    }

    private func signalDrained(_ promise: EventLoopPromise<Void>?) {
        promise?.succeed()
    }

    // MARK: Buffered requests

    func execute(
        _ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, on eventLoop: any EventLoop,
        cancellation: UpstreamCancellation?
    ) -> EventLoopFuture<UpstreamResponse> {
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        let head = prepare(head, body: body)
        let ((request, action), drainedNow) = withState { state in
            let id = state.makeID()
            let request = UpstreamPendingRequest(id: id, head: head, body: body, promise: promise, pool: self)
            return (request, Self.lease(request, requeue: false, &state))
        }
        signalDrained(drainedNow)
        perform(action, for: request)
        if !request.isFinished {
            let timeoutTask = eventLoop.scheduleTask(in: timeout) { [request] in
                request.abandon(UpstreamError(.timedOut, "no response from upstream \(self.hostHeader) within \(timeout.nanoseconds / 1_000_000) ms"))
            }
            request.setTimeout(timeoutTask)
            cancellation?.onCancel { [request] in
                request.abandon(UpstreamError(.connectionClosed, "request cancelled"))
            }
        }
        return promise.futureResult
    }

    /// Sets `Host` and framing headers for a buffered request.
    private func prepare(_ head: HTTPRequestHead, body: ByteBuffer?) -> HTTPRequestHead {
        var head = head
        head.version = .http1_1
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        head.headers.remove(name: "Transfer-Encoding")
        if let body {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        } else if head.method == .POST || head.method == .PUT || head.method == .PATCH {
            head.headers.replaceOrAdd(name: "Content-Length", value: "0")
        } else {
            head.headers.remove(name: "Content-Length")
        }
        return head
    }

    /// What to do, decided under the lock, for a request that wants a connection.
    private enum LeaseOutcome {
        case run(UpstreamConnection)
        case wait(connect: Int?)
        case reject(UpstreamError.Kind)
    }

    private static func lease(_ request: UpstreamPendingRequest, requeue: Bool, _ state: inout State) -> LeaseOutcome {
        switch requeue ? state.machine.requeue(request.id) : state.machine.lease(request.id) {
        case .run(let connectionID):
            // Every connection the machine knows is in `connections`.
            return .run(state.connections[connectionID]!)
        case .wait(let connect):
            state.waiting[request.id] = request
            return .wait(connect: connect ? state.makeID() : nil)
        case .reject(let kind):
            return .reject(kind)
        }
    }

    private func perform(_ action: LeaseOutcome, for request: UpstreamPendingRequest) {
        switch action {
        case .run(let connection):
            run(request, on: connection)
        case .wait(let newConnection):
            if let newConnection { connect(newConnection) }
        case .reject(let kind):
            let error: UpstreamError
            switch kind {
            case .poolQueueFull:
                error = UpstreamError(.poolQueueFull, "upstream \(hostHeader): all connections busy and the queue is full")
            case .shutdown:
                error = UpstreamError(.shutdown, "upstream client is shut down")
            default:
                error = UpstreamError(kind, "upstream \(hostHeader) refused the request")
            }
            request.complete(.failure(error))
        }
    }

    /// Hands `connection` (leased to `request` by the machine) to the request, or gives it
    /// back if the request gave up meanwhile.
    private func run(_ request: UpstreamPendingRequest, on connection: UpstreamConnection) {
        if request.claim(connection) {
            connection.start(.buffered(request), head: request.head, body: request.body)
        } else {
            released(connection.id, reusable: true)
        }
    }

    /// A request that lost a reused connection before any response goes again, first in line.
    func requeue(_ request: UpstreamPendingRequest) {
        let (action, drainedNow) = withState { Self.lease(request, requeue: true, &$0) }
        signalDrained(drainedNow)
        perform(action, for: request)
    }

    /// A waiting request timed out or was cancelled. If it was already handed a connection,
    /// `run` gives that connection back when the request refuses it.
    func cancelWaiter(_ request: UpstreamPendingRequest) {
        let (_, drainedNow) = withState { state in
            if state.machine.cancel(request.id) { state.waiting[request.id] = nil }
        }
        signalDrained(drainedNow)
    }

    // MARK: Connection events

    /// A pooled connection finished an exchange.
    func released(_ connectionID: Int, reusable: Bool) {
        let ((action, request, connection), drainedNow) = withState { state in
            let action = state.machine.released(connectionID, reusable: reusable)
            var request: UpstreamPendingRequest?
            if case .run(let requestID) = action { request = state.waiting.removeValue(forKey: requestID) }
            return (action, request, state.connections[connectionID])
        }
        signalDrained(drainedNow)
        switch action {
        case .run:
            guard let connection else { return }
            if let request {
                run(request, on: connection)
            } else {
                // Cannot happen: every waiter the machine knows is in `waiting`.
                assertionFailure("pool machine served an unknown request")
                released(connectionID, reusable: true)
            }
        case .close:
            connection?.channel.close(promise: nil)
        case .park, .none:
            break
        }
    }

    private func connect(_ connectionID: Int) {
        let loop = group.any()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnectionHandler { [self] reusable in self.released(connectionID, reusable: reusable) })
                }
            }
        bootstrap.connect(host: host, port: port).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                // On the channel's loop.
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self) else {
                    channel.close(promise: nil)
                    connectFailed(ChannelError.ioOnClosedChannel)
                    return
                }
                let connection = UpstreamConnection(
                    id: connectionID, channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                connected(connection)
                channel.closeFuture.whenComplete { [self] _ in closed(connectionID) }
            case .failure(let error):
                connectFailed(error)
            }
        }
    }

    private func connected(_ connection: UpstreamConnection) {
        let ((action, request), drainedNow) = withState { state in
            state.connections[connection.id] = connection
            let action = state.machine.connected(connection.id)
            var request: UpstreamPendingRequest?
            if case .run(let requestID) = action { request = state.waiting.removeValue(forKey: requestID) }
            return (action, request)
        }
        signalDrained(drainedNow)
        switch action {
        case .run:
            if let request { run(request, on: connection) } else { released(connection.id, reusable: true) }
        case .close:
            connection.channel.close(promise: nil)
        case .park:
            break
        }
    }

    private func connectFailed(_ error: any Error) {
        let ((request, connectionID), drainedNow) = withState { state in
            let action = state.machine.connectFailed()
            let request = action.fail.flatMap { state.waiting.removeValue(forKey: $0) }
            return (request, action.connect ? state.makeID() : nil)
        }
        signalDrained(drainedNow)
        request?.complete(.failure(UpstreamError(.connectFailed, "cannot connect to upstream \(hostHeader): \(error)")))
        if let connectionID { connect(connectionID) }
    }

    private func closed(_ connectionID: Int) {
        let (newConnection, drainedNow) = withState { state in
            state.connections[connectionID] = nil
            return state.machine.closed(connectionID) ? state.makeID() : nil
        }
        signalDrained(drainedNow)
        if let newConnection { connect(newConnection) }
    }

    // MARK: Streams

    func stream(
        _ head: HTTPRequestHead, on eventLoop: any EventLoop, onHead: @escaping @Sendable (HTTPResponseHead) -> Void,
        onBody: @escaping @Sendable (ByteBuffer) -> Void, onEnd: @escaping @Sendable ((any Error)?) -> Void
    ) -> UpstreamStream {
        let head = prepare(head, body: nil)
        let closed = eventLoop.makePromise(of: Void.self)
        let (core, isShutdown) = state.withLockedValue { state in
            let id = state.makeID()
            let core = UpstreamStreamCore(id: id, eventLoop: eventLoop, closed: closed, onHead: onHead, onBody: onBody, onEnd: onEnd)
            if state.machine.isShutdown { return (core, true) }
            state.streams[id] = core
            return (core, false)
        }
        if isShutdown {
            core.cancel(UpstreamError(.shutdown, "upstream client is shut down"))
            closed.succeed()
            return UpstreamStream(core: core)
        }
        closed.futureResult.whenComplete { [self] _ in
            let (_, drainedNow) = withState { $0.streams[core.id] = nil }
            signalDrained(drainedNow)
        }

        // Prefer the caller's loop, so callbacks need no hop.
        let bootstrap = (ClientBootstrap(validatingGroup: eventLoop) ?? ClientBootstrap(group: group))
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnectionHandler { _ in channel.close(promise: nil) })
                }
            }
        bootstrap.connect(host: host, port: port).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                channel.closeFuture.whenComplete { _ in
                    core.connectionEnded(UpstreamError(.connectionClosed, "upstream closed the stream"))
                    closed.succeed()
                }
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self) else {
                    channel.close(promise: nil)
                    return
                }
                let connection = UpstreamConnection(
                    id: core.id, channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                if core.attach(connection) {
                    handler.start(.streaming(core), head: head, body: nil)
                } else {
                    channel.close(promise: nil)
                }
            case .failure(let error):
                core.connectionEnded(UpstreamError(.connectFailed, "cannot connect to upstream \(hostHeader): \(error)"))
                closed.succeed()
            }
        }
        return UpstreamStream(core: core)
    }

    // MARK: Shutdown

    func shutdown() async {
        let ((drained, waiting, connections, streams), drainedNow) = withState { state in
            let drained = state.drained ?? group.next().makePromise(of: Void.self)
            state.drained = drained
            let action = state.machine.shutdown()
            let waiting = action.fail.compactMap { state.waiting.removeValue(forKey: $0) }
            let connections = action.close.compactMap { state.connections[$0] }
            return (drained, waiting, connections, Array(state.streams.values))
        }
        signalDrained(drainedNow)
        let error = UpstreamError(.shutdown, "upstream client is shut down")
        for request in waiting { request.complete(.failure(error)) }
        for connection in connections { connection.shutdown() }
        for stream in streams { stream.cancel(error) }
        try? await drained.futureResult.get()
    }
}

// MARK: - Connection

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

/// Where one exchange's response goes.
enum UpstreamExchangeTarget: Sendable {
    case buffered(UpstreamPendingRequest)
    case streaming(UpstreamStreamCore)

    var id: ObjectIdentifier {
        switch self {
        case .buffered(let request): ObjectIdentifier(request)
        case .streaming(let core): ObjectIdentifier(core)
        }
    }
}

/// Runs one exchange at a time on an HTTP/1.1 client pipeline (`addHTTPClientHandlers()`, whose
/// decoder knows that responses to HEAD have no body). Loop-confined.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private struct Exchange {
        let target: UpstreamExchangeTarget
        let sequence: Int
        let isSafeMethod: Bool
        let requestKeepAlive: Bool
        let onReusedConnection: Bool
        var head: HTTPResponseHead?
        var body: ByteBuffer?
    }

    /// Told when an exchange ends; `true` if the connection may serve another.
    private let released: @Sendable (Bool) -> Void
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var sequence = 0
    private var completedExchanges = 0
    private var shuttingDown = false

    init(released: @escaping @Sendable (Bool) -> Void) {
        self.released = released
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start(_ target: UpstreamExchangeTarget, head: HTTPRequestHead, body: ByteBuffer?) {
        if case .buffered(let request) = target, request.isFinished {
            // It timed out or was cancelled between being handed this connection and now (its
            // abort may have run before this): do not send it, keep the connection.
            released(true)
            return
        }
        guard let context, context.channel.isActive, !shuttingDown, exchange == nil else {
            assert(exchange == nil, "a second exchange on a busy connection")
            // Nothing was sent, so sending it elsewhere is always safe.
            let error =
                shuttingDown
                ? UpstreamError(.shutdown, "upstream client is shut down")
                : UpstreamError(.connectionClosed, "upstream connection closed before the request was sent")
            Self.deliver(.failure(error), to: target, retryable: !shuttingDown)
            released(false)
            self.context?.close(promise: nil)
            return
        }
        sequence += 1
        let sequence = self.sequence
        exchange = Exchange(
            target: target, sequence: sequence,
            isSafeMethod: head.method == .GET || head.method == .HEAD || head.method == .OPTIONS,
            requestKeepAlive: head.isKeepAlive, onReusedConnection: completedExchanges > 0)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenFailure { [self] error in
            guard self.exchange?.sequence == sequence else { return }
            // Socket errors may mean a stale connection; others (invalid headers) would recur.
            fail(
                UpstreamError(.connectionClosed, "cannot send to upstream: \(error)"),
                retryCandidate: error is IOError || error is ChannelError)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard exchange != nil else { return }
            // 1xx informational responses precede the real one.
            if head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols { return }
            exchange!.head = head
            if case .streaming(let core) = exchange!.target { core.deliverHead(head) }
        case .body(let buffer):
            guard let target = exchange?.target else { return }
            if case .streaming(let core) = target {
                core.deliverBody(buffer)
            } else if exchange!.body == nil {
                exchange!.body = buffer
            } else {
                var buffer = buffer
                exchange!.body!.writeBuffer(&buffer)
            }
        case .end:
            guard let finished = exchange else { return }
            exchange = nil
            completedExchanges += 1
            guard let head = finished.head else {
                Self.deliver(.failure(UpstreamError(.connectionClosed, "upstream response without a head")), to: finished.target, retryable: false)
                released(false)
                context.close(promise: nil)
                return
            }
            var reusable = finished.requestKeepAlive && head.isKeepAlive && !shuttingDown
            if case .streaming = finished.target { reusable = false }
            // Back to the pool first, so that whoever sees the response sees the pool settled.
            released(reusable)
            if !reusable { context.close(promise: nil) }
            let response = UpstreamResponse(head: head, body: finished.body ?? ByteBuffer())
            Self.deliver(.success(response), to: finished.target, retryable: false)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamError(.connectionClosed, "upstream closed the connection"), retryCandidate: true)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(
            UpstreamError(.connectionClosed, "upstream connection error: \(error)"),
            retryCandidate: error is IOError || error is ChannelError)
        context.close(promise: nil)
    }

    /// A request gave up (timeout, cancellation): if it is the current exchange, drop the
    /// connection; the request has already failed itself.
    func abort(_ target: ObjectIdentifier) {
        guard let current = exchange, current.target.id == target else { return }
        exchange = nil
        released(false)
        context?.close(promise: nil)
    }

    func shutdown() {
        shuttingDown = true
        fail(UpstreamError(.shutdown, "upstream client is shut down"), retryCandidate: false)
        context?.close(promise: nil)
    }

    private func fail(_ error: UpstreamError, retryCandidate: Bool) {
        guard let failed = exchange else { return }
        exchange = nil
        // A reused connection the server closed before answering (it timed out the idle
        // connection, or restarted): sending a safe request again on another is harmless.
        let retryable = retryCandidate && !shuttingDown && failed.onReusedConnection && failed.head == nil && failed.isSafeMethod
        Self.deliver(.failure(error), to: failed.target, retryable: retryable)
        released(false)
        context?.close(promise: nil)
    }

    private static func deliver(_ result: Result<UpstreamResponse, UpstreamError>, to target: UpstreamExchangeTarget, retryable: Bool) {
        switch target {
        case .buffered(let request):
            if case .failure = result, retryable, request.retry() { return }
            request.complete(result)
        case .streaming(let core):
            switch result {
            case .success: core.connectionEnded(nil)
            case .failure(let error): core.connectionEnded(error)
            }
        }
    }
}

// MARK: - Buffered request

/// One `execute` call, from queueing to its promise's completion. Its promise is completed
/// exactly once, by whichever of response, error, timeout, cancellation or shutdown comes first.
final class UpstreamPendingRequest: Sendable {
    let id: Int
    let head: HTTPRequestHead
    let body: ByteBuffer?
    private let promise: EventLoopPromise<UpstreamResponse>
    private let pool: UpstreamConnectionPool
    private let state = NIOLockedValueBox(State())

    private struct State {
        enum Phase {
            case queued
            case running(UpstreamConnection)
            case finished
        }
        var phase = Phase.queued
        var retries = 0
        var timeout: Scheduled<Void>?
    }

    init(id: Int, head: HTTPRequestHead, body: ByteBuffer?, promise: EventLoopPromise<UpstreamResponse>, pool: UpstreamConnectionPool) {
        self.id = id
        self.head = head
        self.body = body
        self.promise = promise
        self.pool = pool
    }

    var isFinished: Bool {
        state.withLockedValue { if case .finished = $0.phase { true } else { false } }
    }

    func setTimeout(_ task: Scheduled<Void>) {
        let finished = state.withLockedValue { state in
            if case .finished = state.phase { return true }
            state.timeout = task
            return false
        }
        if finished { task.cancel() }
    }

    /// Takes the connection the pool leased; false if the request already gave up.
    func claim(_ connection: UpstreamConnection) -> Bool {
        state.withLockedValue { state in
            guard case .queued = state.phase else { return false }
            state.phase = .running(connection)
            return true
        }
    }

    /// The connection failed before any response: queue again if retries are left.
    func retry() -> Bool {
        let again = state.withLockedValue { state in
            guard case .running = state.phase, state.retries < UpstreamConnectionPool.maxRetries else { return false }
            state.retries += 1
            state.phase = .queued
            return true
        }
        if again { pool.requeue(self) }
        return again
    }

    func complete(_ result: Result<UpstreamResponse, UpstreamError>) {
        let (done, timeout) = state.withLockedValue { state -> (Bool, Scheduled<Void>?) in
            if case .finished = state.phase { return (false, nil) }
            state.phase = .finished
            defer { state.timeout = nil }
            return (true, state.timeout)
        }
        guard done else { return }
        timeout?.cancel()
        switch result {
        case .success(let response): promise.succeed(response)
        case .failure(let error): promise.fail(error)
        }
    }

    /// Timeout or cancellation: fail now, and leave the queue or drop the connection.
    func abandon(_ error: UpstreamError) {
        let (previous, timeout) = state.withLockedValue { state -> (State.Phase, Scheduled<Void>?) in
            let previous = state.phase
            state.phase = .finished
            defer { state.timeout = nil }
            return (previous, state.timeout)
        }
        switch previous {
        case .finished:
            return
        case .queued:
            timeout?.cancel()
            pool.cancelWaiter(self)
            promise.fail(error)
        case .running(let connection):
            timeout?.cancel()
            connection.abort(self)
            promise.fail(error)
        }
    }
}

// MARK: - Stream

/// One `stream` call: its dedicated connection and the delivery of callbacks on the caller's
/// loop. `onEnd` is delivered exactly once; after it, nothing.
final class UpstreamStreamCore: Sendable {
    let id: Int
    let eventLoop: any EventLoop
    let closed: EventLoopPromise<Void>
    private let onHead: @Sendable (HTTPResponseHead) -> Void
    private let onBody: @Sendable (ByteBuffer) -> Void
    private let onEnd: @Sendable ((any Error)?) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var connection: UpstreamConnection?
        /// Set by `cancel`: the connection is (to be) closed, and `onEnd` gets this error.
        var cancelledWith: UpstreamError?
        var ended = false
    }

    init(
        id: Int, eventLoop: any EventLoop, closed: EventLoopPromise<Void>, onHead: @escaping @Sendable (HTTPResponseHead) -> Void,
        onBody: @escaping @Sendable (ByteBuffer) -> Void, onEnd: @escaping @Sendable ((any Error)?) -> Void
    ) {
        self.id = id
        self.eventLoop = eventLoop
        self.closed = closed
        self.onHead = onHead
        self.onBody = onBody
        self.onEnd = onEnd
    }

    /// The connection is up; false if the stream was cancelled meanwhile.
    func attach(_ connection: UpstreamConnection) -> Bool {
        state.withLockedValue { state in
            guard state.cancelledWith == nil, !state.ended else { return false }
            state.connection = connection
            return true
        }
    }

    func cancel(_ error: UpstreamError) {
        let connection = state.withLockedValue { state -> UpstreamConnection? in
            guard state.cancelledWith == nil, !state.ended else { return nil }
            state.cancelledWith = error
            return state.connection
        }
        connection?.channel.close(promise: nil)
        eventLoop.execute { self.deliverEnd(error) }
    }

    func deliverHead(_ head: HTTPResponseHead) {
        onLoop {
            guard self.isStreaming else { return }
            self.onHead(head)
        }
    }

    func deliverBody(_ body: ByteBuffer) {
        onLoop {
            guard self.isStreaming else { return }
            self.onBody(body)
        }
    }

    /// The response ended (`nil`) or the connection failed.
    func connectionEnded(_ error: (any Error)?) {
        onLoop { self.deliverEnd(error) }
    }

    private var isStreaming: Bool {
        state.withLockedValue { $0.cancelledWith == nil && !$0.ended }
    }

    private func deliverEnd(_ error: (any Error)?) {
        let final = state.withLockedValue { state -> (any Error)?? in
            if state.ended { return .none }
            state.ended = true
            return .some(state.cancelledWith ?? error)
        }
        guard case .some(let error) = final else { return }
        onEnd(error)
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }
}
