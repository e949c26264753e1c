import DurableStreams
import Testing

@Suite("Producer headers: parsing and validation (§5.2.1)")
struct ProducerClaimTests {
    // MARK: Header parsing

    @Test func noHeadersMeansNoClaim() throws {
        #expect(try ProducerClaim(id: nil, epoch: nil, seq: nil) == nil)
    }

    @Test func allThreeHeadersMakeAClaim() throws {
        let claim = try #require(try ProducerClaim(id: "order-service-1", epoch: "3", seq: "17"))
        #expect(claim == ProducerClaim(id: "order-service-1", epoch: 3, seq: 17))
    }

    @Test(arguments: [
        ("p", nil, nil), (nil, "0", nil), (nil, nil, "0"),
        ("p", "0", nil), ("p", nil, "0"), (nil, "0", "0"),
    ] as [(String?, String?, String?)])
    func partialHeadersAreABadRequest(id: String?, epoch: String?, seq: String?) {
        let error = #expect(throws: ProtocolError.self) { try ProducerClaim(id: id, epoch: epoch, seq: seq) }
        #expect(error?.status == .badRequest)
    }

    @Test func emptyIDIsABadRequest() {
        let error = #expect(throws: ProtocolError.self) { try ProducerClaim(id: "", epoch: "0", seq: "0") }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["", "1abc", "0xyz", "1e3", "-1", "+1", " 1", "1 ", "1.0", "0x1", "abc", "１",
                      "9007199254740992", "18446744073709551615", "18446744073709551616", "99999999999999999999"])
    func invalidEpochIsABadRequest(value: String) {
        let error = #expect(throws: ProtocolError.self) { try ProducerClaim(id: "p", epoch: value, seq: "0") }
        #expect(error?.status == .badRequest)
    }

    @Test(arguments: ["", "1abc", "0xyz", "1e3", "-1", "+1", " 1", "1 ", "1.0", "0x1", "abc", "１",
                      "9007199254740992", "18446744073709551615", "18446744073709551616", "99999999999999999999"])
    func invalidSeqIsABadRequest(value: String) {
        let error = #expect(throws: ProtocolError.self) { try ProducerClaim(id: "p", epoch: "0", seq: value) }
        #expect(error?.status == .badRequest)
    }

    @Test func theLargestSafeIntegerIsAccepted() throws {
        #expect(ProducerClaim.maxValue == 9_007_199_254_740_991)
        let claim = try #require(try ProducerClaim(id: "p", epoch: "9007199254740991", seq: "9007199254740991"))
        #expect(claim.epoch == ProducerClaim.maxValue)
        #expect(claim.seq == ProducerClaim.maxValue)
    }

    @Test func leadingZerosAreAccepted() throws {
        let claim = try #require(try ProducerClaim(id: "p", epoch: "007", seq: "00"))
        #expect(claim.epoch == 7)
        #expect(claim.seq == 0)
    }

    @Test func idIsKeptVerbatim() throws {
        let claim = try #require(try ProducerClaim(id: " spaced id ", epoch: "0", seq: "0"))
        #expect(claim.id == " spaced id ")
    }

    // MARK: Validation against server state

    @Test func unknownProducerStartingAtSeqZeroIsAccepted() {
        #expect(ProducerClaim(id: "p", epoch: 0, seq: 0).validate(against: nil) == .accept(ProducerState(epoch: 0, lastSeq: 0)))
    }

    @Test func unknownProducerMayOpenAtAnyEpoch() {
        #expect(ProducerClaim(id: "p", epoch: 2, seq: 0).validate(against: nil) == .accept(ProducerState(epoch: 2, lastSeq: 0)))
    }

    @Test func unknownProducerNotStartingAtZeroIsAGap() {
        #expect(ProducerClaim(id: "p", epoch: 0, seq: 5).validate(against: nil) == .gap(expected: 0, received: 5))
        #expect(ProducerClaim(id: "p", epoch: 3, seq: 1).validate(against: nil) == .gap(expected: 0, received: 1))
    }

    @Test func olderEpochIsStale() {
        let state = ProducerState(epoch: 2, lastSeq: 7)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 0).validate(against: state) == .staleEpoch(current: 2))
        #expect(ProducerClaim(id: "p", epoch: 0, seq: 8).validate(against: state) == .staleEpoch(current: 2))
    }

    @Test func newerEpochAtSeqZeroIsAccepted() {
        let state = ProducerState(epoch: 0, lastSeq: 7)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 0).validate(against: state) == .accept(ProducerState(epoch: 1, lastSeq: 0)))
        // Epochs may skip.
        #expect(ProducerClaim(id: "p", epoch: 10, seq: 0).validate(against: state) == .accept(ProducerState(epoch: 10, lastSeq: 0)))
    }

    @Test func newerEpochNotAtSeqZeroIsRejected() {
        let state = ProducerState(epoch: 0, lastSeq: 7)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 5).validate(against: state) == .newEpochNotAtZero)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 8).validate(against: state) == .newEpochNotAtZero)
    }

    @Test func sameEpochRepeatedOrOlderSeqIsADuplicateReportingTheCurrentState() {
        let state = ProducerState(epoch: 1, lastSeq: 2)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 2).validate(against: state) == .duplicate(state))
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 1).validate(against: state) == .duplicate(state))
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 0).validate(against: state) == .duplicate(state))
    }

    @Test func sameEpochNextSeqIsAccepted() {
        let state = ProducerState(epoch: 1, lastSeq: 2)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 3).validate(against: state) == .accept(ProducerState(epoch: 1, lastSeq: 3)))
    }

    @Test func sameEpochSkippedSeqIsAGap() {
        let state = ProducerState(epoch: 1, lastSeq: 2)
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 4).validate(against: state) == .gap(expected: 3, received: 4))
        #expect(ProducerClaim(id: "p", epoch: 1, seq: 1000).validate(against: state) == .gap(expected: 3, received: 1000))
    }

    @Test func validationAtTheLargestValues() {
        let max = ProducerClaim.maxValue
        let state = ProducerState(epoch: max, lastSeq: max - 1)
        #expect(ProducerClaim(id: "p", epoch: max, seq: max).validate(against: state) == .accept(ProducerState(epoch: max, lastSeq: max)))
        #expect(ProducerClaim(id: "p", epoch: max - 1, seq: 0).validate(against: state) == .staleEpoch(current: max))
    }

    @Test func aSequenceOfClaimsWalksTheStateMachine() {
        var state: ProducerState?
        func send(_ epoch: UInt64, _ seq: UInt64) -> ProducerDecision {
            let decision = ProducerClaim(id: "p", epoch: epoch, seq: seq).validate(against: state)
            if case .accept(let next) = decision { state = next }
            return decision
        }
        #expect(send(0, 0) == .accept(ProducerState(epoch: 0, lastSeq: 0)))
        #expect(send(0, 1) == .accept(ProducerState(epoch: 0, lastSeq: 1)))
        #expect(send(0, 2) == .accept(ProducerState(epoch: 0, lastSeq: 2)))
        #expect(send(0, 1) == .duplicate(ProducerState(epoch: 0, lastSeq: 2)))
        #expect(send(0, 4) == .gap(expected: 3, received: 4))
        #expect(send(1, 3) == .newEpochNotAtZero)
        #expect(send(1, 0) == .accept(ProducerState(epoch: 1, lastSeq: 0)))
        #expect(send(0, 3) == .staleEpoch(current: 1))
        #expect(state == ProducerState(epoch: 1, lastSeq: 0))
    }
}
