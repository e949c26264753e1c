import NIOCore

/// Cuts an upstream SSE byte stream into whole events, keeping each event's exact bytes so the
/// edge can forward them untouched. Incremental: feed chunks as they arrive.
public struct SSEEventSplitter: Sendable {
    /// One event: its `event:` name, its joined `data:` payload, and its bytes on the wire
    /// (terminating blank line included).
    public struct Event: Equatable, Sendable {
        public var name: String
        public var data: String
        public var raw: ByteBuffer

        public init(name: String, data: String, raw: ByteBuffer) {
            self.name = name
            self.data = data
            self.raw = raw
        }
    }

    public init() {}

    private var pending = ByteBuffer()
    /// Events larger than this mean a broken upstream; the caller drops the connection.
    public static let maxEventBytes = 64 << 20

    public enum Failure: Error { case eventTooLarge }

    /// Appends `bytes` and returns every event completed by them.
    public mutating func feed(_ bytes: ByteBuffer) throws -> [Event] {
        var bytes = bytes
        pending.writeBuffer(&bytes)
        var events: [Event] = []
        while let end = eventEnd() {
            let raw = pending.readSlice(length: end)!
            events.append(Self.parse(raw))
        }
        if pending.readableBytes > Self.maxEventBytes { throw Failure.eventTooLarge }
        if pending.readableBytes == 0 { pending.clear() } else { pending.discardReadBytes() }
        return events
    }

    /// The length of the first complete event in `pending` (through its blank line), if any.
    /// Our upstreams end lines with LF; CRLF and CR are accepted too.
    private func eventEnd() -> Int? {
        pending.withUnsafeReadableBytes { bytes -> Int? in
            var index = 0
            var lineStart = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x0A || byte == 0x0D {
                    var next = index + 1
                    if byte == 0x0D, next < bytes.count, bytes[next] == 0x0A { next += 1 }
                    if byte == 0x0D, next == bytes.count { return nil }  // CR at the end: wait for a possible LF
                    if lineStart { return next }
                    lineStart = true
                    index = next
                    continue
                }
                lineStart = false
                index += 1
            }
            return nil
        }
    }

    private static func parse(_ raw: ByteBuffer) -> Event {
        let text = String(buffer: raw)
        var name = "message"
        var data: [Substring] = []
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            if line.hasPrefix(":") { continue }
            let field: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.first == " " { value = value.dropFirst() }
            } else {
                field = line
                value = ""
            }
            if field == "event" { name = String(value) }
            if field == "data" { data.append(value) }
        }
        return Event(name: name, data: data.joined(separator: "\n"), raw: raw)
    }
}
