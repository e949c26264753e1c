import DurableStreams

/// What the append rules need to know about a stream, whatever store keeps it.
public struct AppendContext: Sendable {
    public var contentType: ContentType
    public var tail: StreamOffset
    public var closed: Bool
    /// The producer request that closed the stream, so that its retry is recognised.
    public var closedBy: ProducerClaim?
    /// The last `Stream-Seq` accepted.
    public var lastSeq: String?
    /// The state of the request's producer (`Producer-Id`), if it has appended before.
    public var producerState: ProducerState?

    public init(
        contentType: ContentType, tail: StreamOffset, closed: Bool, closedBy: ProducerClaim?, lastSeq: String?,
        producerState: ProducerState?
    ) {
        self.contentType = contentType
        self.tail = tail
        self.closed = closed
        self.closedBy = closedBy
        self.lastSeq = lastSeq
        self.producerState = producerState
    }
}

/// What a store does with an append.
public enum AppendDecision: Sendable {
    /// Already done (a retry of an accepted append or close): answer, change nothing.
    case duplicate(AppendResult)
    /// Refused: answer with the error, change nothing.
    case reject(ProtocolError)
    /// Write these messages of the body, then record the new state, all as one step.
    case accept(Accepted)

    public struct Accepted: Sendable {
        /// The body's messages, as ranges of its bytes (one range for a byte stream).
        public var messages: [Range<Int>]
        /// The producer's new state, to be stored under its id.
        public var producerState: ProducerState?
        /// The new last `Stream-Seq`, if the request carried one.
        public var seq: String?
        /// The append also closes the stream.
        public var closes: Bool
    }
}

/// The append rules of §5.2 as one pure function, in their precedence order: closed, content
/// type, producer, `Stream-Seq`, then the body's framing. Every store runs the same rules, so a
/// backend only decides where the bytes and the state go, never whether they may.
public enum AppendRules {
    public static func decide(_ command: AppendCommand, in context: AppendContext) -> AppendDecision {
        let hasData = command.body.bytes.readableBytes > 0
        if context.closed {
            if let producer = command.producer, let closer = context.closedBy, producer.epoch == closer.epoch,
                producer.seq == closer.seq, producer.id.utf8.elementsEqual(closer.id.utf8)
            {
                return .duplicate(AppendResult(tail: context.tail, closed: true, producer: context.producerState, duplicate: true))
            }
            // A plain close-only request is idempotent; a producer's is only when it is the one that
            // closed the stream (above): any other producer is told the stream is closed (§5.2.1).
            if !hasData && command.closed && command.producer == nil {
                return .duplicate(AppendResult(tail: context.tail, closed: true, producer: nil, duplicate: true))
            }
            return .reject(ProtocolError(
                .conflict, "stream is closed",
                headers: [(HeaderName.closed, "true"), (HeaderName.nextOffset, context.tail.description)]))
        }
        if hasData, let type = command.contentType, type != context.contentType {
            return .reject(ProtocolError(
                .conflict, "content type \(type.mediaType) does not match the stream's \(context.contentType.mediaType)"))
        }
        var producerState: ProducerState?
        if let producer = command.producer {
            switch producer.validate(against: context.producerState) {
            case .accept(let next):
                producerState = next
            case .duplicate(let current):
                return .duplicate(AppendResult(tail: context.tail, closed: context.closed, producer: current, duplicate: true))
            case .staleEpoch(let current):
                return .reject(ProtocolError(.forbidden, "stale producer epoch", headers: [(HeaderName.producerEpoch, String(current))]))
            case .gap(let expected, let received):
                return .reject(ProtocolError(.conflict, "producer sequence gap", headers: [
                    (HeaderName.producerExpectedSeq, String(expected)), (HeaderName.producerReceivedSeq, String(received)),
                ]))
            case .newEpochNotAtZero:
                return .reject(ProtocolError(.badRequest, "a new producer epoch must start at Producer-Seq 0"))
            }
        }
        if let seq = command.seq, let last = context.lastSeq, !last.utf8.lexicographicallyPrecedes(seq.utf8) {
            return .reject(ProtocolError(.conflict, "Stream-Seq must increase: \(seq) is not after \(last)"))
        }
        switch command.body.messages {
        case .success(let messages):
            return .accept(AppendDecision.Accepted(
                messages: messages, producerState: producerState, seq: command.seq, closes: command.closed))
        case .failure(let error):
            return .reject(error)
        }
    }
}
