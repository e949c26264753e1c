import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One parsed Server-Sent Event.
public struct SSEEvent: Sendable, Equatable {
    public var event: String
    public var data: String

    public init(event: String, data: String) {
        self.event = event
        self.data = data
    }
}

/// Reads an SSE response event by event, parsing the stream the way a browser's EventSource
/// does (lines, `field:value`, one optional space stripped, blank line dispatches).
public final class SSEReader {
    public let connection: TestConnection
    public let response: EventLoopFuture<TestResponse>
    private let events: AsyncStream<SSEEvent>
    private var iterator: AsyncStream<SSEEvent>.AsyncIterator

    private init(connection: TestConnection, response: EventLoopFuture<TestResponse>, events: AsyncStream<SSEEvent>) {
        self.connection = connection
        self.response = response
        self.events = events
        self.iterator = events.makeAsyncIterator()
    }

    /// Opens `path` (which should carry `live=sse`) on a new connection.
    public static func open(port: Int, _ path: String, headers: [(String, String)] = []) async throws -> SSEReader {
        let connection = try await TestConnection.connect(port: port)
        let (stream, continuation) = AsyncStream.makeStream(of: SSEEvent.self)
        let parser = NIOLockedValueBox(SSEParser())
        let response = connection.send(.GET, path, headers: headers) { buffer in
            let parsed = parser.withLockedValue { $0.feed(buffer) }
            for event in parsed { continuation.yield(event) }
        }
        response.whenComplete { _ in continuation.finish() }
        return SSEReader(connection: connection, response: response, events: stream)
    }

    /// The next event, or `nil` once the server has ended the response.
    public func next() async -> SSEEvent? {
        await iterator.next()
    }

    /// Events until the server ends the response.
    public func remaining() async -> [SSEEvent] {
        var all: [SSEEvent] = []
        while let event = await next() { all.append(event) }
        return all
    }

    public func close() async { await connection.close() }
}

/// Incremental SSE parser.
public struct SSEParser: Sendable {
    private var pending: [UInt8] = []
    private var event = ""
    private var data: [String] = []
    private var lastWasCR = false

    public init() {}

    public mutating func feed(_ buffer: ByteBuffer) -> [SSEEvent] {
        var out: [SSEEvent] = []
        for byte in buffer.readableBytesView {
            if byte == 0x0A && lastWasCR { lastWasCR = false; continue }
            lastWasCR = byte == 0x0D
            if byte == 0x0A || byte == 0x0D {
                let line = String(decoding: pending, as: UTF8.self)
                pending.removeAll(keepingCapacity: true)
                if line.isEmpty {
                    if !data.isEmpty || !event.isEmpty {
                        out.append(SSEEvent(event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n")))
                    }
                    event = ""
                    data = []
                } else if !line.hasPrefix(":") {
                    let field: Substring
                    var value: Substring
                    if let colon = line.firstIndex(of: ":") {
                        field = line[..<colon]
                        value = line[line.index(after: colon)...]
                        if value.first == " " { value = value.dropFirst() }
                    } else {
                        field = Substring(line)
                        value = ""
                    }
                    if field == "event" { event = String(value) }
                    if field == "data" { data.append(String(value)) }
                }
            } else {
                pending.append(byte)
            }
        }
        return out
    }
}
