/// What the server remembers about one idempotent producer of one stream (§5.2.1).
public struct ProducerState: Hashable, Sendable {
    public var epoch: UInt64
    /// The highest sequence number accepted in `epoch`.
    public var lastSeq: UInt64

    public init(epoch: UInt64, lastSeq: UInt64) {
        self.epoch = epoch
        self.lastSeq = lastSeq
    }
}

/// The three producer headers of an append, validated together.
public struct ProducerClaim: Hashable, Sendable {
    /// The largest epoch or sequence number a JavaScript client can represent exactly.
    public static let maxValue: UInt64 = (1 << 53) - 1

    public var id: String
    public var epoch: UInt64
    public var seq: UInt64

    public init(id: String, epoch: UInt64, seq: UInt64) {
        self.id = id
        self.epoch = epoch
        self.seq = seq
    }

    /// Reads `Producer-Id`, `Producer-Epoch` and `Producer-Seq`: all three or none (`nil`).
    public init?(id: String?, epoch: String?, seq: String?) throws(ProtocolError) {
        if id == nil && epoch == nil && seq == nil { return nil }
        guard let id, let epoch, let seq else {
            throw ProtocolError(.badRequest, "Producer-Id, Producer-Epoch and Producer-Seq must be sent together")
        }
        guard !id.isEmpty else { throw ProtocolError(.badRequest, "Producer-Id must not be empty") }
        guard let epochValue = Self.parseNumber(epoch) else {
            throw ProtocolError(.badRequest, "Producer-Epoch must be an integer between 0 and 2^53-1")
        }
        guard let seqValue = Self.parseNumber(seq) else {
            throw ProtocolError(.badRequest, "Producer-Seq must be an integer between 0 and 2^53-1")
        }
        self.init(id: id, epoch: epochValue, seq: seqValue)
    }

    private static func parseNumber(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 64,
            text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let value = UInt64(text), value <= maxValue
        else { return nil }
        return value
    }

    /// The validation rules of §5.2.1, given what the server knows about this producer.
    public func validate(against state: ProducerState?) -> ProducerDecision {
        guard let state else {
            // An unknown producer may open at any epoch, but its first request must be sequence 0.
            return seq == 0 ? .accept(ProducerState(epoch: epoch, lastSeq: 0)) : .gap(expected: 0, received: seq)
        }
        if epoch < state.epoch { return .staleEpoch(current: state.epoch) }
        if epoch > state.epoch {
            return seq == 0 ? .accept(ProducerState(epoch: epoch, lastSeq: 0)) : .newEpochNotAtZero
        }
        if seq <= state.lastSeq { return .duplicate(state) }
        if seq == state.lastSeq + 1 { return .accept(ProducerState(epoch: epoch, lastSeq: seq)) }
        return .gap(expected: state.lastSeq + 1, received: seq)
    }
}

/// The outcome of checking a producer claim.
public enum ProducerDecision: Hashable, Sendable {
    /// Append, then remember the new state (200).
    case accept(ProducerState)
    /// Already applied: succeed without appending (204).
    case duplicate(ProducerState)
    /// A zombie from an older epoch (403 with the current epoch).
    case staleEpoch(current: UInt64)
    /// A sequence number was skipped (409 with expected and received).
    case gap(expected: UInt64, received: UInt64)
    /// A new epoch must start at sequence 0 (400).
    case newEpochNotAtZero
}
