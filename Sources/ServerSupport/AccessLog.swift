import Foundation
import NIOConcurrencyHelpers

/// What one access-log line says of a request.
public struct AccessLogEntry: Sendable, Equatable {
    /// Seconds since 1970 when the request was complete (head and body received).
    public var time: Double
    public var method: String
    public var uri: String
    public var status: Int
    /// Body bytes of the reply (0 for an event stream, which goes on after the line is written).
    public var bytes: Int
    /// From the request being complete to its reply being ready, in milliseconds (for an event
    /// stream, to its first bytes).
    public var milliseconds: Double
    /// The edge's `X-Cache` outcome, when there is one.
    public var cache: String?
    /// Who made the request, when authentication said: an API key's name or a token's subject.
    public var principal: String?

    public init(
        time: Double, method: String, uri: String, status: Int, bytes: Int, milliseconds: Double, cache: String?,
        principal: String? = nil
    ) {
        self.principal = principal
        self.time = time
        self.method = method
        self.uri = uri
        self.status = status
        self.bytes = bytes
        self.milliseconds = milliseconds
        self.cache = cache
    }

    /// The entry as one line of JSON, ending in a newline.
    public var jsonLine: String {
        var line = "{\"time\":\"\(Self.timestamp(time))\",\"method\":\(Self.quoted(method)),\"uri\":\(Self.quoted(uri))"
        line += ",\"status\":\(status),\"bytes\":\(bytes),\"ms\":\(String(format: "%.3f", milliseconds))"
        if let cache { line += ",\"cache\":\(Self.quoted(cache))" }
        if let principal { line += ",\"principal\":\(Self.quoted(principal))" }
        return line + "}\n"
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.down))
        var parts = tm()
        var value = time_t(whole)
        gmtime_r(&value, &parts)
        let millis = Int((seconds - Double(whole)) * 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// A JSON string: quotes, backslashes and control characters escaped, so a hostile URI
    /// cannot break the line or forge another.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                out += String(format: "\\u%04x", scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// An access log: one JSON line per request, appended to a file (or standard output) by a
/// writer thread, never on an event loop. Lines wait in a bounded buffer; when the disk cannot
/// keep up, lines beyond it are dropped and counted rather than held without end.
public final class AccessLog: Sendable {
    /// Bytes of lines waiting to be written, at most.
    public static let bufferLimit = 4 << 20

    private struct State {
        var pending: [UInt8] = []
        var scheduled = false
        var dropped = 0
    }

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let queue = DispatchQueue(label: "durable-streams.access-log")
    private let state = NIOLockedValueBox(State())

    /// Opens `path` for appending (created 0640 if missing); `-` is standard output.
    public init(path: String) throws {
        if path == "-" {
            descriptor = STDOUT_FILENO
            ownsDescriptor = false
        } else {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else {
                throw ConfigurationFile.Problem(description: "cannot open access log \(path): \(String(cString: strerror(errno)))")
            }
            descriptor = fd
            ownsDescriptor = true
        }
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    /// Lines dropped because the buffer was full.
    public var dropped: Int { state.withLockedValue { $0.dropped } }

    public func record(_ entry: AccessLogEntry) {
        let line = Array(entry.jsonLine.utf8)
        let schedule: Bool = state.withLockedValue { state in
            guard state.pending.count + line.count <= Self.bufferLimit else {
                state.dropped += 1
                return false
            }
            state.pending += line
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { queue.async { self.drain() } }
    }

    /// Writes what is pending until nothing is; on the writer thread.
    private func drain() {
        while true {
            let batch: [UInt8] = state.withLockedValue { state in
                let batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.scheduled = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            batch.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return  // a log that cannot be written must not stop the server
                    }
                    offset += written
                }
            }
        }
    }

    /// Waits until every line recorded so far is written (tests, shutdown).
    public func flush() {
        queue.sync {}
        while state.withLockedValue({ $0.scheduled }) { queue.sync {} }
    }
}
