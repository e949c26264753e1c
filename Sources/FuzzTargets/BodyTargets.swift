import DurableStreams
import NIOCore

extension Fuzz {
    /// JSON-mode append bodies: validation and the split into messages (§9.1).
    ///
    /// Input: the body.
    public static func json(_ input: UnsafeRawBufferPointer) {
        let spans: [Range<Int>]
        var splitAccepted = true
        do {
            spans = try JSONMessages.split(input)
        } catch {
            spans = []
            splitAccepted = error == .emptyArray
        }
        // `split` and `validate` follow one grammar: they must agree on what is JSON.
        let valid = (try? JSONMessages.validate(input)) != nil
        check(valid == splitAccepted, "split and validate disagree (split \(splitAccepted), validate \(valid))")
        guard !spans.isEmpty else { return }

        var previousEnd = 0
        for span in spans {
            check(span.lowerBound >= previousEnd && span.lowerBound < span.upperBound && span.upperBound <= input.count, "bad span \(span)")
            previousEnd = span.upperBound
            // Every message is a JSON text by itself (it is stored and served on its own).
            let message = UnsafeRawBufferPointer(rebasing: input[span])
            check((try? JSONMessages.validate(message)) != nil, "message \(span) is not JSON by itself")
        }
        let topLevelArray = input[input.firstIndex { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }!] == UInt8(ascii: "[")
        if topLevelArray {
            // Reading messages back frames them as one array: it must split into the same messages.
            var framed: [UInt8] = [UInt8(ascii: "[")]
            for (index, span) in spans.enumerated() {
                if index > 0 { framed.append(UInt8(ascii: ",")) }
                framed += input[span]
            }
            framed.append(UInt8(ascii: "]"))
            let again = framed.withUnsafeBytes { bytes in
                (try? JSONMessages.split(bytes))?.map { Array(UnsafeRawBufferPointer(rebasing: bytes[$0])) }
            }
            check(again == spans.map { Array(input[$0]) }, "framed messages do not split back into the same \(spans.count)")
        } else {
            check(spans.count == 1, "a single value split into \(spans.count) messages")
        }
    }

    /// The edge's SSE event splitter: fed the same bytes in any chunking, it must produce the
    /// same events, whose bytes are exactly a prefix of the input.
    ///
    /// Input: the byte stream; the chunkings are derived from it.
    public static func sse(_ input: UnsafeRawBufferPointer) {
        let whole = splitEvents(input, chunkSizes: nil)
        let consumed = whole.reduce(0) { $0 + $1.raw.readableBytes }
        check(consumed <= input.count, "events longer than the input")
        var joined = ByteBuffer()
        for event in whole {
            var raw = event.raw
            check(raw.readableBytes > 0, "empty event")
            let last = raw.getInteger(at: raw.readerIndex + raw.readableBytes - 1, as: UInt8.self)
            check(last == 0x0A || last == 0x0D, "event does not end with a line break")
            joined.writeBuffer(&raw)
        }
        check(joined.readableBytesView.elementsEqual(input.prefix(consumed)), "events are not the input's bytes")

        var random = SplitMix(state: FuzzInput.hash(input))
        for maximum in [1, 3, 64] {
            var sizes: [Int] = []
            var total = 0
            while total < input.count {
                let size = random.upTo(maximum)
                sizes.append(size)
                total += size
            }
            let chunked = splitEvents(input, chunkSizes: sizes)
            check(chunked == whole, "chunks of up to \(maximum) bytes give \(chunked.count) events, not \(whole.count)")
        }
    }

    private static func splitEvents(_ input: UnsafeRawBufferPointer, chunkSizes: [Int]?) -> [SSEEventSplitter.Event] {
        var splitter = SSEEventSplitter()
        var events: [SSEEventSplitter.Event] = []
        var offset = 0
        for size in chunkSizes ?? [input.count] {
            let end = min(offset + size, input.count)
            do {
                events += try splitter.feed(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: input[offset..<end])))
            } catch {
                preconditionFailure("splitter failed on \(input.count) bytes: \(error)")
            }
            offset = end
        }
        return events
    }
}
