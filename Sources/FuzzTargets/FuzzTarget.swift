/// Every fuzz target, by the short name `make fuzz FUZZ_TARGET=<name>`, the fuzzer's
/// `DS_FUZZ_TARGET` and the corpus folder `Tests/FuzzCorpus/<name>/` use. This list is the one
/// place a target is registered; the replay tests check each has a non-empty corpus.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case request
    case query
    case lifetime
    case producer
    case etag
    case contenttype
    case json
    case sse
    case requestsm
    case originconf
    case edgeconf

    /// Runs one input through the target. Rejections are fine; a trap is a finding.
    public func run(_ input: UnsafeRawBufferPointer) {
        switch self {
        case .request: Fuzz.request(input)
        case .query: Fuzz.query(input)
        case .lifetime: Fuzz.lifetime(input)
        case .producer: Fuzz.producer(input)
        case .etag: Fuzz.etag(input)
        case .contenttype: Fuzz.contentType(input)
        case .json: Fuzz.json(input)
        case .sse: Fuzz.sse(input)
        case .requestsm: Fuzz.requestStateMachine(input)
        case .originconf: Fuzz.originConfiguration(input)
        case .edgeconf: Fuzz.edgeConfiguration(input)
        }
    }

    /// Runs `input` through the target.
    public func run(_ input: [UInt8]) {
        input.withUnsafeBytes { run($0) }
    }

    /// What the input of this target looks like, for seed authors and `--list`.
    public var inputFormat: String {
        switch self {
        case .request: return "an HTTP request head: 'METHOD URI' line, header lines, blank line, body"
        case .query: return "a query string (offset, live, cursor; 'upstream' plays the upstream's Stream-Cursor)"
        case .lifetime: return "a Stream-TTL / Stream-Expires-At header value"
        case .producer: return "lines in threes: Producer-Id, Producer-Epoch, Producer-Seq (successive appends)"
        case .etag: return "line 1: If-None-Match value; line 2: a stream id"
        case .contenttype: return "a Content-Type header value"
        case .json: return "a JSON-mode append body"
        case .sse: return "an upstream SSE byte stream"
        case .requestsm: return "bytes read as request events (head, body part, end, response written)"
        case .originconf: return "an origin.conf (TOML)"
        case .edgeconf: return "an edge.conf (TOML)"
        }
    }
}

/// The fuzz target functions. Each takes arbitrary bytes, reaches a parser the way a client
/// (or, for the configuration files, an operator) would, and traps through `check` when an
/// invariant the rest of the server relies on does not hold.
public enum Fuzz {}

/// An invariant violation: trap, so libFuzzer records the input and the replay tests fail.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { preconditionFailure(message()) }
}

/// Helpers to carve fuzz input into the pieces a request would carry.
enum FuzzInput {
    /// The input as text, with invalid UTF-8 repaired, as header and URI bytes become Strings
    /// in the HTTP decoder.
    static func text(_ input: UnsafeRawBufferPointer) -> String {
        String(decoding: input, as: UTF8.self)
    }

    /// The input split at LF bytes, each line decoded on its own (a `Character` split would
    /// keep CRLF together). With `droppingCR`, a line's trailing CR goes, as in HTTP heads.
    static func lines(_ bytes: some Collection<UInt8>, droppingCR: Bool = false) -> [String] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            var line = line[...]
            if droppingCR, line.last == 0x0D { line = line.dropLast() }
            return String(decoding: line, as: UTF8.self)
        }
    }

    /// A 64-bit FNV-1a hash of the input: a deterministic seed (libFuzzer needs the same input
    /// to take the same path every time).
    static func hash(_ input: UnsafeRawBufferPointer) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in input {
            value = (value ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return value
    }
}

/// A small deterministic generator (SplitMix64) for chunkings and choices derived from input,
/// and for the corpus tests' fixed sweep.
public struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    public init(state: UInt64) {
        self.state = state
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A value in `1...upper`.
    mutating func upTo(_ upper: Int) -> Int {
        Int(next() % UInt64(upper)) + 1
    }
}
