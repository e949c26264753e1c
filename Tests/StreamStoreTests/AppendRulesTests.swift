import DurableStreams
import NIOCore
import StreamStore
import Testing

/// The append rules without any store: one context, one command, one decision.
@Suite("AppendRules: §5.2 as a pure function")
struct AppendRulesTests {
    let text = ContentType("text/plain")!
    let json = ContentType("application/json")!

    func context(closed: Bool = false, closedBy: ProducerClaim? = nil, lastSeq: String? = nil, producer: ProducerState? = nil)
        -> AppendContext
    {
        AppendContext(contentType: text, tail: StreamOffset(position: 10), closed: closed, closedBy: closedBy, lastSeq: lastSeq,
                      producerState: producer)
    }

    func command(_ body: String = "x", type: ContentType? = nil, seq: String? = nil, closed: Bool = false,
                 producer: ProducerClaim? = nil, invalidBody: Bool = false) -> AppendCommand {
        let bytes = ByteBuffer(string: body)
        let messages: Result<[Range<Int>], ProtocolError> = invalidBody
            ? .failure(ProtocolError(.badRequest, "invalid JSON")) : .success(body.isEmpty ? [] : [0..<bytes.readableBytes])
        return AppendCommand(contentType: body.isEmpty ? nil : (type ?? text), seq: seq, closed: closed, producer: producer,
                             body: Body(bytes: bytes, messages: messages))
    }

    func status(_ decision: AppendDecision) -> Int? {
        if case .reject(let error) = decision { return error.status.rawValue }
        return nil
    }

    @Test func aPlainAppendIsAccepted() {
        guard case .accept(let accepted) = AppendRules.decide(command(seq: "b"), in: context(lastSeq: "a")) else {
            Issue.record("expected accept")
            return
        }
        #expect(accepted.messages == [0..<1])
        #expect(accepted.seq == "b")
        #expect(!accepted.closes)
    }

    /// Closed comes before content type, which comes before the producer, then Stream-Seq, then
    /// the body's framing: each request below breaks every later rule too.
    @Test func precedenceOrder() {
        let gap = ProducerClaim(id: "p", epoch: 0, seq: 5)
        let everything = command(type: json, seq: "a", producer: gap, invalidBody: true)
        let closed = AppendRules.decide(everything, in: context(closed: true, lastSeq: "z"))
        #expect(status(closed) == 409)
        if case .reject(let error) = closed { #expect(error.reason.contains("closed")) }
        let wrongType = AppendRules.decide(everything, in: context(lastSeq: "z"))
        if case .reject(let error) = wrongType { #expect(error.reason.contains("content type")) }
        let producerGap = AppendRules.decide(command(seq: "a", producer: gap, invalidBody: true), in: context(lastSeq: "z"))
        if case .reject(let error) = producerGap { #expect(error.reason.contains("gap")) }
        let seq = AppendRules.decide(command(seq: "a", invalidBody: true), in: context(lastSeq: "z"))
        if case .reject(let error) = seq { #expect(error.reason.contains("Stream-Seq")) }
        #expect(status(AppendRules.decide(command(invalidBody: true), in: context())) == 400)
    }

    @Test func retriesOfTheClosingRequestAreDuplicates() {
        let closer = ProducerClaim(id: "p", epoch: 1, seq: 3)
        let retry = AppendRules.decide(command(closed: true, producer: closer),
                                       in: context(closed: true, closedBy: closer, producer: ProducerState(epoch: 1, lastSeq: 3)))
        guard case .duplicate(let result) = retry else {
            Issue.record("expected duplicate, got \(retry)")
            return
        }
        #expect(result.closed)
        #expect(result.producer == ProducerState(epoch: 1, lastSeq: 3))
        // A close without data on a closed stream is answered as done; data is a conflict.
        if case .duplicate = AppendRules.decide(command("", closed: true), in: context(closed: true)) {} else {
            Issue.record("a bare close of a closed stream should be a duplicate")
        }
        #expect(status(AppendRules.decide(command("more"), in: context(closed: true))) == 409)
    }

    @Test func producerStatesMoveForwardOnly() {
        let state = ProducerState(epoch: 2, lastSeq: 4)
        guard case .accept(let next) = AppendRules.decide(
            command(producer: ProducerClaim(id: "p", epoch: 2, seq: 5)), in: context(producer: state))
        else {
            Issue.record("expected accept")
            return
        }
        #expect(next.producerState == ProducerState(epoch: 2, lastSeq: 5))
        if case .duplicate = AppendRules.decide(command(producer: ProducerClaim(id: "p", epoch: 2, seq: 4)), in: context(producer: state)) {
        } else {
            Issue.record("a repeated sequence number should be a duplicate")
        }
        #expect(status(AppendRules.decide(command(producer: ProducerClaim(id: "p", epoch: 1, seq: 0)), in: context(producer: state))) == 403)
        #expect(status(AppendRules.decide(command(producer: ProducerClaim(id: "p", epoch: 3, seq: 1)), in: context(producer: state))) == 400)
    }
}
