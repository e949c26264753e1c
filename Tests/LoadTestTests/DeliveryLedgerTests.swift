import NIOCore
import Testing

@testable import LoadTest
import ServerSupport

@Suite("Delivery ledger: loss, duplication and order on crafted sequences")
struct DeliveryLedgerTests {
    private func line(_ stream: Int, _ writer: Int, _ seq: Int, size: Int = 40) -> ArraySlice<UInt8> {
        ArraySlice(LoadMessage(stream: stream, writer: writer, seq: seq).encoded(size: size).dropLast())
    }

    private func ledger(_ seqs: [Int], writers: Int = 1) -> DeliveryLedger {
        var ledger = DeliveryLedger(stream: 0, writers: writers)
        for seq in seqs { _ = ledger.receive(line: line(0, 0, seq)) }
        return ledger
    }

    @Test func aCompleteInOrderSequenceIsClean() {
        let audit = ledger(Array(0..<100)).audit(expected: [ExpectedRange(start: 0, end: 100)])
        #expect(audit.expected == 100)
        #expect(audit.received == 100)
        #expect(!audit.hasProblems)
    }

    @Test func gapsAreLost() {
        let audit = ledger([0, 1, 2, 5, 6, 9]).audit(expected: [ExpectedRange(start: 0, end: 10)])
        #expect(audit.lost == 4)  // 3, 4, 7, 8
        #expect(audit.duplicated == 0)
        #expect(audit.outOfOrder == 0)
    }

    @Test func aMissingTailIsLost() {
        let audit = ledger([0, 1, 2]).audit(expected: [ExpectedRange(start: 0, end: 5)])
        #expect(audit.lost == 2)
    }

    @Test func repeatsAreDuplicatesNotLossOrReordering() {
        let audit = ledger([0, 1, 1, 2, 2, 2, 3]).audit(expected: [ExpectedRange(start: 0, end: 4)])
        #expect(audit.duplicated == 3)
        #expect(audit.lost == 0)
        #expect(audit.outOfOrder == 0)
        #expect(audit.received == 7)
    }

    @Test func aLateArrivalIsOutOfOrderButNotLost() {
        let audit = ledger([0, 2, 1, 3]).audit(expected: [ExpectedRange(start: 0, end: 4)])
        #expect(audit.outOfOrder == 1)
        #expect(audit.lost == 0)
        #expect(audit.duplicated == 0)
    }

    @Test func aReplayedOldMessageIsADuplicateEvenAfterHigherOnes() {
        let audit = ledger([0, 1, 2, 3, 1]).audit(expected: [ExpectedRange(start: 0, end: 4)])
        #expect(audit.duplicated == 1)
        #expect(audit.outOfOrder == 0)
    }

    @Test func writersAreTrackedSeparately() {
        var ledger = DeliveryLedger(stream: 3, writers: 2)
        for seq in 0..<5 {
            _ = ledger.receive(line: line(3, 0, seq))
            _ = ledger.receive(line: line(3, 1, 4 - seq))  // writer 1 arrives backwards
        }
        let audit = ledger.audit(expected: [ExpectedRange(start: 0, end: 5), ExpectedRange(start: 0, end: 5)])
        #expect(audit.lost == 0)
        #expect(audit.outOfOrder == 4)
    }

    @Test func foreignAndGarbledLinesAreCorrupt() {
        var ledger = DeliveryLedger(stream: 0, writers: 1)
        #expect(ledger.receive(line: line(1, 0, 0)) == nil)  // another stream
        #expect(ledger.receive(line: line(0, 7, 0)) == nil)  // unknown writer
        #expect(ledger.receive(line: ArraySlice("ds 0 0 x1 xx".utf8)) == nil)
        #expect(ledger.receive(line: ArraySlice("hello".utf8)) == nil)
        #expect(ledger.receive(line: line(0, 0, 0)) == LoadMessage(stream: 0, writer: 0, seq: 0))
        #expect(ledger.audit(expected: [ExpectedRange(start: 0, end: 1)]).corrupt == 4)
    }

    @Test func aLateJoinerOwesOnlyFromItsStart() {
        let audit = ledger(Array(40..<50)).audit(expected: [ExpectedRange(start: 40, end: 50)])
        #expect(audit.expected == 10)
        #expect(!audit.hasProblems)
    }

    @Test func hasAllAnswersCompletenessOfARange() {
        var tracker = SequenceTracker()
        for seq in [0, 1, 3] { tracker.receive(seq) }
        #expect(!tracker.hasAll(from: 0, to: 4))
        tracker.receive(2)
        #expect(tracker.hasAll(from: 0, to: 4))
        #expect(!tracker.hasAll(from: 0, to: 5))
        #expect(tracker.hasAll(from: 5, to: 5))
    }

    @Test func auditsAddUp() {
        var one = DeliveryAudit()
        one.lost = 2
        one.expected = 10
        var two = DeliveryAudit()
        two.duplicated = 1
        two.expected = 5
        let sum = one + two
        #expect(sum.expected == 15 && sum.lost == 2 && sum.duplicated == 1)
        #expect(sum.hasProblems)
    }
}

@Suite("Messages and lines")
struct LoadMessageTests {
    @Test func encodesToTheExactSizeAndParsesBack() {
        let message = LoadMessage(stream: 12, writer: 3, seq: 98765)
        let bytes = message.encoded(size: 100)
        #expect(bytes.count == 100)
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(LoadMessage.parse(line: bytes.dropLast()) == message)
    }

    @Test func splitsLinesAcrossArbitraryChunkBoundaries() {
        let stream = (0..<50).flatMap { LoadMessage(stream: 0, writer: 0, seq: $0).encoded(size: 37) }
        for cut in [1, 7, 36, 37, 38, 500] {
            var splitter = MessageLineSplitter()
            var seqs: [Int] = []
            var index = 0
            while index < stream.count {
                let end = min(stream.count, index + cut)
                splitter.feed(Array(stream[index..<end])) { line in seqs.append(LoadMessage.parse(line: line)?.seq ?? -1) }
                index = end
            }
            #expect(seqs == Array(0..<50), "chunks of \(cut)")
            #expect(splitter.pendingBytes == 0)
        }
    }

    @Test func splitsByteBuffers() {
        var splitter = MessageLineSplitter()
        var lines: [String] = []
        splitter.feed(ByteBuffer(string: "a\nbb")) { lines.append(String(decoding: $0, as: UTF8.self)) }
        splitter.feed(ByteBuffer(string: "b\n")) { lines.append(String(decoding: $0, as: UTF8.self)) }
        #expect(lines == ["a", "bbb"])
    }
}

@Suite("Latency histogram")
struct LatencyHistogramTests {
    @Test func percentilesOfAKnownDistribution() {
        var histogram = LatencyHistogram()
        for millis in 1...1_000 { histogram.record(nanoseconds: UInt64(millis) * 1_000_000) }
        let summary = histogram.summary
        #expect(summary.count == 1_000)
        // Three significant digits: within 0.1 % of the exact value.
        #expect(abs(summary.p50 - 500) <= 0.5)
        #expect(abs(summary.p90 - 900) <= 0.9)
        #expect(abs(summary.p99 - 990) <= 1)
        #expect(abs(summary.p999 - 999) <= 1)
        #expect(abs(summary.max - 1_000) <= 1)
        #expect(abs(summary.mean - 500.5) <= 1)
        #expect(summary.cdf.first?.percentile == 0)
        #expect(summary.cdf.last?.percentile == 100)
        #expect(zip(summary.cdf, summary.cdf.dropFirst()).allSatisfy { $0.millis <= $1.millis })
    }

    @Test func mergingAddsCounts() {
        var a = LatencyHistogram()
        var b = LatencyHistogram()
        for _ in 0..<10 { a.record(nanoseconds: 1_000_000) }
        for _ in 0..<10 { b.record(nanoseconds: 100_000_000) }
        a.add(b)
        #expect(a.count == 20)
        #expect(abs(a.millis(atPercentile: 25) - 1) < 0.01)
        #expect(abs(a.millis(atPercentile: 75) - 100) < 0.1)
    }

    @Test func anEmptyHistogramSummarisesToZeros() {
        #expect(LatencyHistogram().summary == .empty)
        #expect(LatencyHistogram().millis(atPercentile: 99) == 0)
    }

    @Test func zeroLatencyIsRecordedAsTheSmallestValue() {
        var histogram = LatencyHistogram()
        histogram.record(nanoseconds: 0)
        #expect(histogram.count == 1)
        #expect(histogram.summary.max <= 0.002)
    }
}

@Suite("Targets and scenarios")
struct ScenarioTests {
    @Test func targetsParseAndOnlyLoopbackIsLocal() throws {
        #expect(Target(url: "http://127.0.0.1:4438") == Target(host: "127.0.0.1", port: 4438))
        #expect(Target(url: "http://localhost:80/")?.isLoopback == true)
        #expect(Target(url: "http://[::1]:9000") == Target(host: "::1", port: 9000))
        #expect(Target(url: "http://[::1]:9000")?.isLoopback == true)
        #expect(Target(url: "http://127.9.9.9:1")?.isLoopback == true)
        #expect(Target(url: "http://10.0.0.1:4438")?.isLoopback == false)
        #expect(Target(url: "http://example.com:4438")?.isLoopback == false)
        #expect(Target(url: "http://127.0.0.1.example.com:1")?.isLoopback == false)
        #expect(Target(url: "https://127.0.0.1:1") == nil)
        #expect(Target(url: "http://127.0.0.1:99999") == nil)
        #expect(Target(url: "http://127.0.0.1:1/path") == nil)
    }

    @Test func aRemoteTargetIsRefusedWithoutTheFlag() async throws {
        let options = LoadTestOptions(scenario: Scenario(name: "live", kind: .live), target: Target(host: "10.1.2.3", port: 4438))
        let runner = LoadTestRunner(options: options, group: .singletonMultiThreadedEventLoopGroup)
        await #expect(throws: ScenarioError.self) { _ = try await runner.run() }
    }

    @Test func scenarioFilesSetEveryFigure() throws {
        let text = """
            kind = "mixed"
            streams = 3
            readers_per_stream = 7
            writers_per_stream = 2
            appends_per_second = 2.5
            message_bytes = 64
            duration = "3s"
            drain = "1s"
            connect_rate = 500
            minimum_lifetime = "1s"
            maximum_lifetime = "2s"
            join_from_now_share = 0.25
            """
        let scenario = try Scenario(file: ConfigurationFile(text: text, path: "loadtest/churn.conf"))
        #expect(scenario.name == "churn")
        #expect(scenario.kind == .mixed)
        #expect(scenario.streams == 3 && scenario.readersPerStream == 7 && scenario.writersPerStream == 2)
        #expect(scenario.appendsPerSecond == 2.5 && scenario.messageBytes == 64)
        #expect(scenario.duration == .seconds(3) && scenario.drain == .seconds(1))
        #expect(scenario.minimumLifetime == .seconds(1) && scenario.maximumLifetime == .seconds(2))
        #expect(scenario.joinFromNowShare == 0.25 && scenario.connectRate == 500)
        #expect(scenario.latencyFrom == .ack)
    }

    @Test func latencyFromIsReadFromTheFile() throws {
        let send = try Scenario(file: ConfigurationFile(text: "kind = \"live\"\nlatency_from = \"send\"", path: "wake.conf"))
        #expect(send.latencyFrom == .send)
        let ack = try Scenario(file: ConfigurationFile(text: "kind = \"sse\"\nlatency_from = \"ack\"", path: "a.conf"))
        #expect(ack.latencyFrom == .ack)
    }

    @Test func latencyStartsAtTheAcknowledgementOrAtTheFirstSend() {
        let messages = [LoadMessage(stream: 0, writer: 0, seq: 0), LoadMessage(stream: 0, writer: 0, seq: 1)]

        // Timed from the acknowledgement: nothing until the writer hears back.
        let byAck = AckTable(streams: 1, writers: 1)
        byAck.sent(stream: 0, writer: 0, seq: 0, at: 100)
        #expect(byAck.latencyStarts(stream: 0, messages) == [nil, nil])
        byAck.acknowledged(stream: 0, writer: 0, seq: 0, at: 250)
        #expect(byAck.latencyStarts(stream: 0, messages) == [250, nil])

        // Timed from the send: known as soon as it goes; a retry keeps the first attempt's time;
        // acknowledgements still count the appends.
        let bySend = AckTable(streams: 1, writers: 1, latencyFrom: .send)
        bySend.sent(stream: 0, writer: 0, seq: 0, at: 100)
        #expect(bySend.latencyStarts(stream: 0, messages) == [100, nil])
        bySend.sent(stream: 0, writer: 0, seq: 0, at: 180)
        bySend.acknowledged(stream: 0, writer: 0, seq: 0, at: 250)
        bySend.sent(stream: 0, writer: 0, seq: 1, at: 300)
        #expect(bySend.latencyStarts(stream: 0, messages) == [100, 300])
        #expect(bySend.acknowledgedCounts(stream: 0) == [1])
    }

    @Test func badScenarioFilesNameTheLine() {
        for (text, fragment) in [
            ("kind = \"live\"\nreaders = 4", "x.conf:2: unknown setting 'readers'"),
            ("kind = \"tail\"", "x.conf:1: 'kind' must be one of"),
            ("streams = 1", "'kind' is required"),
            ("kind = \"live\"\nmessage_bytes = 4", "message_bytes must be between"),
            ("kind = \"sse\"\nduration = \"soon\"", "x.conf:2: 'duration' must be a duration"),
            ("kind = \"live\"\nlatency_from = \"receipt\"", "x.conf:2: 'latency_from' must be one of ack, send"),
        ] {
            #expect {
                _ = try Scenario(file: ConfigurationFile(text: text, path: "x.conf"))
            } throws: { error in
                "\(error)".contains(fragment)
            }
        }
    }

    @Test func builtInScenariosExistByName() {
        for kind in Scenario.Kind.allCases { #expect(Scenario.builtIn(kind.rawValue)?.kind == kind) }
        #expect(Scenario.builtIn("sse")?.contentType == "application/octet-stream")
        #expect(Scenario.builtIn("nope") == nil)
    }
}
