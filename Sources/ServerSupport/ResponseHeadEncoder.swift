import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 response heads as bytes. Both servers frame their own responses (see
/// `HTTPServerHandler`): a head can then be serialized once and written many times (a cache
/// entry keeps its head as bytes), which NIO's typed response encoder cannot do.
///
/// Framing is decided by the caller (`ResponseFraming`); header names and values are written as
/// given: every header is either the server's own or echoes one the request parser validated.
public enum ResponseHeadEncoder {
    /// The status line and every header line of `head`, each ending in CRLF, without the blank
    /// line that ends the head (so that per-request headers can follow).
    public static func writeLines(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        writeStatusLine(head, into: &buffer)
        for (name, value) in head.headers {
            writeHeader(name: name, value: value, into: &buffer)
        }
    }

    /// `HTTP/1.1 200 OK` and its CRLF.
    public static func writeStatusLine(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/")
        writeDecimal(head.version.major, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDecimal(head.version.minor, into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        writeDecimal(Int(head.status.code), into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }

    /// One `name: value` line and its CRLF.
    @inlinable
    public static func writeHeader(name: String, value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// A non-negative decimal number without a String in between.
    public static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        precondition(value >= 0)
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }
}
