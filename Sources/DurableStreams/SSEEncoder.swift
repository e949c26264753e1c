import Foundation
import NIOCore

/// Renders the protocol's Server-Sent Events (§5.8): `event: data` carrying the stream's bytes
/// (as text, or base64 for binary content types) and `event: control` carrying the position.
public enum SSEEncoder {
    /// Base64 text is split into `data:` lines of this many characters (a multiple of 4).
    public static let base64LineLength = 76

    /// The control event's fields (§5.8): where to resume, the cursor, and the reader's state.
    public struct Control: Hashable, Sendable {
        public var nextOffset: StreamOffset
        /// Omitted once the stream is closed: nobody reconnects after EOF.
        public var cursor: UInt64?
        public var upToDate: Bool
        public var closed: Bool

        public init(nextOffset: StreamOffset, cursor: UInt64?, upToDate: Bool, closed: Bool) {
            self.nextOffset = nextOffset
            self.cursor = cursor
            self.upToDate = upToDate
            self.closed = closed
        }

        /// The JSON payload, e.g. `{"streamNextOffset":"…","streamCursor":"12","upToDate":true}`.
        public var json: String {
            var text = "{\"streamNextOffset\":\"\(nextOffset)\""
            if let cursor, !closed { text += ",\"streamCursor\":\"\(cursor)\"" }
            if upToDate || closed { text += ",\"upToDate\":true" }
            if closed { text += ",\"streamClosed\":true" }
            return text + "}"
        }
    }

    /// Appends an `event: data` whose payload is the concatenation of `parts`.
    public static func writeData(_ parts: [ByteBuffer], base64: Bool, into out: inout ByteBuffer) {
        out.writeStaticString("event: data\n")
        if base64 {
            var raw = [UInt8]()
            raw.reserveCapacity(parts.reduce(0) { $0 + $1.readableBytes })
            for part in parts { raw.append(contentsOf: part.readableBytesView) }
            let text = Data(raw).base64EncodedString()
            var index = text.utf8.startIndex
            repeat {
                let end = text.utf8.index(index, offsetBy: base64LineLength, limitedBy: text.utf8.endIndex) ?? text.utf8.endIndex
                out.writeStaticString("data:")
                out.writeString(String(text[index..<end]))
                out.writeStaticString("\n")
                index = end
            } while index < text.utf8.endIndex
        } else {
            writeTextLines(parts, into: &out)
        }
        out.writeStaticString("\n")
    }

    /// Appends an `event: control`.
    public static func writeControl(_ control: Control, into out: inout ByteBuffer) {
        out.writeStaticString("event: control\ndata:")
        out.writeString(control.json)
        out.writeStaticString("\n\n")
    }

    /// One `data:` line per line of text. CR, LF and CRLF all end a line in SSE, so each becomes
    /// a line break the client rejoins with LF. `data:` is written without a space, except before
    /// a line that itself starts with a space: clients strip one leading space, so it is doubled.
    private static func writeTextLines(_ parts: [ByteBuffer], into out: inout ByteBuffer) {
        var previousWasCR = false
        var atLineStart = true
        for part in parts {
            part.withUnsafeReadableBytes { bytes in
                var runStart = 0
                func flushRun(upTo end: Int) {
                    guard runStart < end else { return }
                    if atLineStart {
                        out.writeStaticString(bytes[runStart] == UInt8(ascii: " ") ? "data: " : "data:")
                        atLineStart = false
                    }
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<end]))
                }
                for index in 0..<bytes.count {
                    let byte = bytes[index]
                    guard byte == 0x0A || byte == 0x0D else {
                        previousWasCR = false
                        continue
                    }
                    flushRun(upTo: index)
                    runStart = index + 1
                    if byte == 0x0A && previousWasCR {
                        previousWasCR = false  // the LF of a CRLF: that line already ended
                        continue
                    }
                    previousWasCR = byte == 0x0D
                    if atLineStart { out.writeStaticString("data:") }
                    out.writeStaticString("\n")
                    atLineStart = true
                }
                flushRun(upTo: bytes.count)
            }
        }
        if atLineStart { out.writeStaticString("data:") }
        out.writeStaticString("\n")
    }
}
