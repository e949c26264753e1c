import NIOCore

/// One message a writer appends: a line naming its stream, its writer and its sequence number,
/// padded to the scenario's size: `ds <stream> <writer> <seq> xxxx…\n`. Readers parse every line
/// they receive, so loss, duplication and reordering are judged on what actually arrived.
public struct LoadMessage: Equatable, Sendable {
    public var stream: Int
    public var writer: Int
    public var seq: Int

    public init(stream: Int, writer: Int, seq: Int) {
        self.stream = stream
        self.writer = writer
        self.seq = seq
    }

    /// Room for the header with large numbers, a pad byte and the newline.
    public static let minimumBytes = 32

    /// The message's bytes, exactly `size` long (or longer if the header itself is).
    public func encoded(size: Int) -> [UInt8] {
        var bytes = Array("ds \(stream) \(writer) \(seq) ".utf8)
        if bytes.count + 1 < size { bytes.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: size - 1 - bytes.count)) }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Parses one line (without its newline); nil if it is not one of ours.
    public static func parse<Bytes: Collection<UInt8>>(line: Bytes) -> LoadMessage? {
        // The three numbers, without an array: this runs for every message every reader receives.
        var fields = (0, 0, 0)
        var count = 0
        var value = 0
        var digits = 0
        var iterator = line.makeIterator()
        guard iterator.next() == UInt8(ascii: "d"), iterator.next() == UInt8(ascii: "s"), iterator.next() == UInt8(ascii: " ") else {
            return nil
        }
        while count < 3, let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard digits < 15 else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: " ") where digits > 0:
                switch count {
                case 0: fields.0 = value
                case 1: fields.1 = value
                default: fields.2 = value
                }
                count += 1
                value = 0
                digits = 0
            default:
                return nil
            }
        }
        guard count == 3 else { return nil }
        while let byte = iterator.next() {
            if byte != UInt8(ascii: "x") { return nil }
        }
        return LoadMessage(stream: fields.0, writer: fields.1, seq: fields.2)
    }
}

/// Cuts a reader's received bytes into lines. A response may end in the middle of a message (the
/// server chunks byte streams where it likes), so the partial line waits for the next bytes.
public struct MessageLineSplitter: Sendable {
    private var partial: [UInt8] = []

    public init() {}

    /// Bytes waiting for their newline.
    public var pendingBytes: Int { partial.count }

    /// Feeds `bytes` and calls `line` for every complete line, without its newline.
    public mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes, line: (ArraySlice<UInt8>) -> Void) where Bytes.Index == Int {
        var start = bytes.startIndex
        var index = start
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "\n") {
                if partial.isEmpty {
                    line(ArraySlice(bytes[start..<index]))
                } else {
                    partial.append(contentsOf: bytes[start..<index])
                    line(partial[...])
                    partial.removeAll(keepingCapacity: true)
                }
                start = index + 1
            }
            index += 1
        }
        if start < bytes.endIndex { partial.append(contentsOf: bytes[start..<bytes.endIndex]) }
    }

    public mutating func feed(_ buffer: ByteBuffer, line: (ArraySlice<UInt8>) -> Void) {
        feed(buffer.readableBytesView, line: line)
    }
}
