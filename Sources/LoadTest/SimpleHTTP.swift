import NIOCore
import NIOHTTP1

/// A complete response to one of the run's own requests (stream creation, pre-filling, metrics).
struct SimpleResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer
}

struct SimpleHTTPError: Error, CustomStringConvertible {
    var description: String
}

/// One request on a fresh connection, answered as a whole. For setup and scraping only; the
/// measured clients keep their connections.
final class SimpleRequest: ClientConnectionDelegate, @unchecked Sendable {
    // Touched only on `loop`.
    private let promise: EventLoopPromise<SimpleResponse>
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var channel: Channel?
    private var completed = false

    private init(promise: EventLoopPromise<SimpleResponse>) {
        self.promise = promise
    }

    static func send(
        _ method: HTTPMethod, _ uri: String, to target: Target, on loop: EventLoop,
        headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws -> SimpleResponse {
        let request = SimpleRequest(promise: loop.makePromise())
        // A stalled server must not stall the run (metrics are scraped once a second).
        let timeout = loop.scheduleTask(in: .seconds(10)) {
            request.finish(.failure(SimpleHTTPError(description: "\(target) did not answer \(method) \(uri) within 10 s")))
            request.channel?.close(promise: nil)
        }
        request.promise.futureResult.whenComplete { _ in timeout.cancel() }
        ClientConnection.connect(to: target, on: loop, delegate: request).whenComplete { result in
            switch result {
            case .success(let channel):
                request.channel = channel
                ClientConnection.send(channel, method: method, target: target, uri: uri, headers: headers + [("Connection", "close")], body: body)
            case .failure(let error):
                request.finish(.failure(SimpleHTTPError(description: "cannot connect to \(target): \(error)")))
            }
        }
        return try await request.promise.futureResult.get()
    }

    func received(head: HTTPResponseHead) { self.head = head }
    func received(body: ByteBuffer) {
        var body = body
        self.body.writeBuffer(&body)
    }
    func receivedEnd() {
        guard let head else { return }
        finish(.success(SimpleResponse(status: Int(head.status.code), headers: head.headers, body: body)))
        channel?.close(promise: nil)
    }
    func connectionClosed() {
        finish(.failure(SimpleHTTPError(description: "connection closed before the response was complete")))
    }

    private func finish(_ result: Result<SimpleResponse, Error>) {
        guard !completed else { return }
        completed = true
        promise.completeWith(result)
    }
}
