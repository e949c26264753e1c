import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The I/O side of `UpstreamClient`: opens connections, runs `UpstreamPoolStateMachine`'s
/// decisions, and tracks the requests and SSE streams in flight. One lock guards the machine and
/// the maps; it is never held while calling out (promises, channels, callbacks).
final class UpstreamConnectionPool: Sendable {
    let host: String
    let port: Int
    /// TLS for every connection, when the upstream is `https://`.
    let tls: UpstreamTLS?
    let connectTimeout: TimeAmount
    /// The largest body a buffered answer may have (`nil`: no bound).
    let maxResponseBytes: Int?
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

    init(
        host: String, port: Int, group: any EventLoopGroup, maxConnections: Int, maxQueued: Int, connectTimeout: TimeAmount,
        maxResponseBytes: Int? = nil, tls: UpstreamTLS? = nil
    ) {
        self.host = host
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
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
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnectionHandler(maxResponseBytes: maxResponseBytes) { [self] reusable in
                            self.released(connectionID, reusable: reusable)
                        })
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
            .channelInitializer { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
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
