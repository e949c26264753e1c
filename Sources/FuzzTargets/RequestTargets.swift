import DurableStreams

extension Fuzz {
    /// The prefix the servers strip before a stream name.
    static let streamPrefix = "/v1/stream/"

    /// A whole request as the origin and the edge decode it: the URI is split into stream name
    /// and query, the name validated (`StreamPath.validate`), then method, query, headers and
    /// body length decoded (`StreamOperation.decode`).
    ///
    /// Input: `METHOD URI` on the first line, `Name: value` header lines, a blank line, then the
    /// body (only its length matters).
    public static func request(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        var headBytes = bytes[...]
        var bodyLength = 0
        if let blank = (0..<max(0, bytes.count - 1)).first(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }) {
            headBytes = bytes[..<blank]
            bodyLength = bytes.count - blank - 2
        }
        var lines = FuzzInput.lines(headBytes, droppingCR: true)[...]
        let requestLine = lines.popFirst() ?? ""
        let words = requestLine.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        let method = String(words[0])
        let uri = words.count > 1 ? words[1] : ""
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), trimmed(line[line.index(after: colon)...])))
        }
        // NIO's `HTTPHeaders.first(name:)`: case-insensitive name, first value.
        let header: (String) -> String? = { name in
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        let target = RequestTarget(String(uri))
        let path = target.path
        let query = target.query
        // By byte, as the servers match the prefix (`StreamPath.canonicalName`).
        let name = path.utf8.starts(with: streamPrefix.utf8) ? path[path.utf8.index(path.startIndex, offsetBy: streamPrefix.utf8.count)...] : path

        if let validated = try? StreamPath.validate(name) {
            checkValidStreamName(validated)
        }

        let operation: StreamOperation
        do {
            operation = try StreamOperation.decode(method: method, query: query, header: header, bodyLength: bodyLength)
        } catch {
            check(error.status == .badRequest || error.status == .methodNotAllowed, "decode rejected with \(error)")
            return
        }
        switch operation {
        case .create(let create):
            checkLifetimeRoundTrip(create.lifetime)
            if let type = create.contentType { check(ContentType(type.headerValue) == type, "content type not stable") }
        case .append(let append):
            check(append.closed || bodyLength > 0, "append without body and without close")
            check((append.contentType != nil) == (bodyLength > 0), "append content type present iff body")
            if let seq = append.seq { check(!seq.isEmpty, "empty Stream-Seq accepted") }
            if let producer = append.producer {
                check(producer.epoch <= ProducerClaim.maxValue && producer.seq <= ProducerClaim.maxValue, "producer number out of range")
                check(!producer.id.isEmpty, "empty producer id accepted")
            }
        case .read(let read):
            check(method == "GET", "read from \(method)")
            if read.mode.isLive { check(read.start != .beginning || query.contains("offset"), "live read without offset") }
            if case .offset(let offset) = read.start {
                check(StreamOffset(offset.description) == offset, "offset \(offset) does not round-trip")
            }
        case .head, .delete:
            break
        }
    }

    /// What every accepted stream name must be: bounded, free of control characters and of
    /// empty, `.` and `..` segments, and stable under re-encoding.
    static func checkValidStreamName(_ name: String) {
        check(!name.isEmpty && name.utf8.count <= StreamPath.maxLength, "stream name length")
        check(name.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }, "control character in accepted stream name")
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            check(!segment.isEmpty && segment != "." && segment != "..", "bad segment '\(segment)' accepted in \(name)")
        }
        // Percent-encoding the decoded name and validating it again must give the same name:
        // decoding is applied exactly once, so an escape cannot smuggle a different name.
        let encoded = percentEncode(name, keepSlash: true)
        if encoded.utf8.count <= StreamPath.maxLength {
            let again = try? StreamPath.validate(Substring(encoded))
            check(again == name, "re-encoded stream name \(encoded) validates to \(again ?? "an error"), not \(name)")
        }
        if !name.contains("%") {
            check((try? StreamPath.validate(Substring(name))) == name, "a decoded name without escapes is not stable")
        }
    }

    /// The query string alone: parameters, the read start, and the cursors the origin and the
    /// edge derive from a client's `cursor`.
    ///
    /// Input: a query string. `offset`, `live` and `cursor` are the protocol's; `upstream`
    /// stands for the `Stream-Cursor` an upstream answered with (the edge's shared answers).
    public static func query(_ input: UnsafeRawBufferPointer) {
        let text = FuzzInput.text(input)
        if let offset = StreamOffset(Substring(text)) {
            check(offset.description == text, "offset parsed from a non-canonical form \(text)")
        }
        guard let parameters = try? QueryParameters(query: text[...]) else { return }
        for name in ["offset", "live", "cursor", "upstream"] {
            guard let value = parameters[name] else { continue }
            // Decoding is stable: the value, encoded again, decodes to itself.
            let reparsed = try? QueryParameters(query: Substring("\(name)=\(percentEncode(value, keepSlash: false))"))
            check(reparsed?[name] == value, "query value '\(value)' does not survive re-encoding")
        }
        if let start = try? ReadStart(queryValue: parameters["offset"].map { Substring($0) }), case .offset(let offset) = start {
            check(offset.position <= StreamOffset.maxPosition, "offset beyond the wire form")
            check(StreamOffset(offset.description) == offset, "offset \(offset) does not round-trip")
        }
        let cursor = parameters["cursor"].map { Substring($0) }
        for interval in [1.0, 20, 3600] {
            let policy = CursorPolicy(intervalSeconds: interval)
            for now in [0, CursorPolicy.defaultEpoch - 1, 1_760_000_000, 4_102_444_800] {
                let current = policy.interval(at: now)
                for jitter in [1, 3600, 0, -7, Int.max, Int.min] {
                    let next = policy.nextCursor(after: cursor, now: now, jitter: { jitter })
                    check(next >= current, "cursor \(next) behind the clock's interval \(current)")
                    if let client = cursor.flatMap({ UInt64($0) }), client >= current {
                        // Strictly forward, unless there is no room left above the client's.
                        check(next > client || (next == client && client > UInt64.max - 3600), "cursor \(next) not after the client's \(client)")
                    } else {
                        check(next == current, "cursor \(next) for a client behind the clock, expected \(current)")
                    }
                }
            }
        }
        let upstream = Substring(parameters["upstream"] ?? "")
        let shared = CursorPolicy.sharedAnswerCursor(upstream: upstream, client: cursor)
        if let upstreamValue = UInt64(upstream), let clientValue = cursor.flatMap({ UInt64($0) }) {
            guard let sharedValue = UInt64(shared) else { preconditionFailure("shared cursor '\(shared)' is not a number") }
            check(sharedValue >= upstreamValue, "shared cursor behind the upstream's")
            check(sharedValue > clientValue || clientValue == .max, "shared cursor \(sharedValue) not after the client's \(clientValue)")
        } else {
            check(shared == upstream, "shared cursor '\(shared)' invented for a non-numeric cursor")
        }
    }

    /// Percent-encodes every byte that is not unreserved (RFC 3986), and `/` unless kept.
    static func percentEncode(_ text: String, keepSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Header values as the HTTP decoder hands them over: without surrounding spaces and tabs.
    static func trimmed(_ text: Substring) -> String {
        var view = text
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
