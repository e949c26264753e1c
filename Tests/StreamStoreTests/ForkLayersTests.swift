import DurableStreams
import Testing
@testable import StreamStore

// Pure tests of the layer logic every store uses for forks (§4.2): no store, no I/O.

private typealias Facts = ForkLayers.Facts<String>

private let byteBoundaries = MessageBoundaries(framed: false)

private func ends(_ ends: UInt64...) -> MessageBoundaries { MessageBoundaries(ends: ends) }

private func layer(_ owner: String, _ range: Range<UInt64>, _ boundaries: MessageBoundaries = byteBoundaries) -> ForkLayer<String> {
    ForkLayer(owner: owner, range: range, boundaries: boundaries)
}

/// The layers of `top` from a table of facts, as a store builds them from its index.
private func collect(_ top: String, _ chain: [String: Facts]) -> [ForkLayer<String>] {
    ForkLayers.collect(top) { chain[$0] }
}

/// "owner lower..<upper" for each layer or piece: compact and readable in a failure.
private func describe(_ layers: [ForkLayer<String>]) -> [String] {
    layers.map { "\($0.owner) \($0.range.lowerBound)..<\($0.range.upperBound)" }
}

private func describe(_ read: LayeredRead<String>) -> [String] {
    read.pieces.map { "\($0.owner) \($0.range.lowerBound)..<\($0.range.upperBound)" }
}

private func plan(_ layers: [ForkLayer<String>], tail: UInt64, from start: ReadStart, maxBytes: Int = 1 << 30)
    -> Result<LayeredRead<String>, ProtocolError>
{
    ForkLayers.plan(layers, tail: tail, from: start, maxBytes: maxBytes)
}

private func at(_ position: UInt64) -> ReadStart { .offset(StreamOffset(position: position)) }

extension Result {
    fileprivate var value: Success? { try? get() }
    fileprivate var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// Byte stream "a" 0..<5, then a fork "b" with its own bytes 5..<9.
private var twoByteLayers: [ForkLayer<String>] { [layer("a", 0..<5), layer("b", 5..<9)] }

/// JSON stream "a" (messages ending at 2, 4 and 6) forked at 4 by "b", whose own messages end
/// at 7 and 10. The end at 6 is one of a's later messages, which b does not see.
private var twoJSONLayers: [ForkLayer<String>] { [layer("a", 0..<4, ends(2, 4, 6)), layer("b", 4..<10, ends(7, 10))] }

@Suite("ForkLayers: collect")
struct ForkLayersCollectTests {
    // A stream that is not a fork is one layer, from 0 to its tail.
    @Test func aPlainStreamIsOneLayer() {
        let layers = collect("a", ["a": Facts(base: 0, tail: 10, boundaries: byteBoundaries, source: nil)])
        #expect(describe(layers) == ["a 0..<10"])
    }

    // A stream the index does not know has no layers.
    @Test func anUnknownStreamHasNoLayers() {
        #expect(collect("x", [:]).isEmpty)
    }

    // A fork is its source's bytes below the fork point, then its own; the source's later bytes are left out.
    @Test func aForkIsItsSourceBelowTheForkPointThenItsOwn() {
        let layers = collect("b", [
            "a": Facts(base: 0, tail: 20, boundaries: byteBoundaries, source: nil),
            "b": Facts(base: 6, tail: 9, boundaries: byteBoundaries, source: "a"),
        ])
        #expect(describe(layers) == ["a 0..<6", "b 6..<9"])
    }

    // A chain is listed oldest ancestor first, each level cut at the next one's fork point.
    @Test func aChainListsEveryLevelOldestFirst() {
        let layers = collect("c", [
            "a": Facts(base: 0, tail: 10, boundaries: byteBoundaries, source: nil),
            "b": Facts(base: 6, tail: 9, boundaries: byteBoundaries, source: "a"),
            "c": Facts(base: 8, tail: 12, boundaries: byteBoundaries, source: "b"),
        ])
        #expect(describe(layers) == ["a 0..<6", "b 6..<8", "c 8..<12"])
    }

    // A fork made below its parent's own fork point reads none of the parent's own bytes.
    @Test func aForkBelowItsParentsForkPointSkipsTheParent() {
        let layers = collect("c", [
            "a": Facts(base: 0, tail: 10, boundaries: byteBoundaries, source: nil),
            "b": Facts(base: 6, tail: 9, boundaries: byteBoundaries, source: "a"),
            "c": Facts(base: 3, tail: 7, boundaries: byteBoundaries, source: "b"),
        ])
        #expect(describe(layers) == ["a 0..<3", "c 3..<7"])
    }

    // A fork at offset 0 inherits nothing: only its own layer.
    @Test func aForkAtZeroHasOnlyItsOwnLayer() {
        let layers = collect("b", [
            "a": Facts(base: 0, tail: 10, boundaries: byteBoundaries, source: nil),
            "b": Facts(base: 0, tail: 4, boundaries: byteBoundaries, source: "a"),
        ])
        #expect(describe(layers) == ["b 0..<4"])
    }

    // A fork with no bytes of its own still has its (empty) layer at the fork point, after the source's.
    @Test func aForkWithoutOwnBytesHasAnEmptyTopLayer() {
        let layers = collect("b", [
            "a": Facts(base: 0, tail: 10, boundaries: byteBoundaries, source: nil),
            "b": Facts(base: 6, tail: 6, boundaries: byteBoundaries, source: "a"),
        ])
        #expect(describe(layers) == ["a 0..<6", "b 6..<6"])
    }

    // Each layer carries its owner's message boundaries (for JSON reads).
    @Test func layersCarryTheirOwnersBoundaries() {
        let layers = collect("b", [
            "a": Facts(base: 0, tail: 6, boundaries: ends(2, 4, 6), source: nil),
            "b": Facts(base: 4, tail: 10, boundaries: ends(7, 10), source: "a"),
        ])
        #expect(layers.map { $0.boundaries.ends ?? [] } == [[2, 4, 6], [7, 10]])
    }
}

@Suite("ForkLayers: isBoundary")
struct ForkLayersBoundaryTests {
    // In a byte stream every position up to the tail is a boundary, none past it.
    @Test func everyBytePositionUpToTheTailIsABoundary() {
        for position in 0...9 { #expect(ForkLayers.isBoundary(UInt64(position), in: twoByteLayers, tail: 9)) }
        #expect(!ForkLayers.isBoundary(10, in: twoByteLayers, tail: 9))
    }

    // In JSON, boundaries are 0, each visible message end, and the fork point; a source's message end past the fork point is not one.
    @Test func jsonBoundariesAreTheVisibleMessageEnds() {
        let boundaries = (0...11).filter { ForkLayers.isBoundary(UInt64($0), in: twoJSONLayers, tail: 10) }
        #expect(boundaries == [0, 2, 4, 7, 10])
    }

    // The fork point is a boundary even though the fork's own message ends do not list it.
    @Test func theForkPointIsABoundaryOfTheFork() {
        let layers = [layer("a", 0..<4, ends(2, 4)), layer("b", 4..<9, ends(9))]
        #expect(ForkLayers.isBoundary(4, in: layers, tail: 9))
        // And so is the tail of a fork with nothing of its own.
        #expect(ForkLayers.isBoundary(4, in: [layer("a", 0..<4, ends(2, 4)), layer("b", 4..<4, ends())], tail: 4))
    }
}

@Suite("ForkLayers: plan")
struct ForkLayersPlanTests {
    // A read from the beginning takes each layer's part in order, up to the tail.
    @Test func aWholeReadCrossesEveryLayer() throws {
        let read = try plan(twoByteLayers, tail: 9, from: .beginning).get()
        #expect(describe(read) == ["a 0..<5", "b 5..<9"])
        #expect(read.start == 0 && read.end == 9)
    }

    // A budget that runs out exactly at a layer boundary stops there; the next read starts in the next layer.
    @Test func aBudgetEndingAtTheLayerBoundaryStopsThere() throws {
        let first = try plan(twoByteLayers, tail: 9, from: .beginning, maxBytes: 5).get()
        #expect(describe(first) == ["a 0..<5"])
        #expect(first.end == 5)
        let second = try plan(twoByteLayers, tail: 9, from: at(5), maxBytes: 5).get()
        #expect(describe(second) == ["b 5..<9"])
    }

    // A small budget that crosses a layer boundary takes the rest of one layer and the start of the next.
    @Test func aSmallBudgetCrossesTheLayerBoundary() throws {
        let read = try plan(twoByteLayers, tail: 9, from: at(3), maxBytes: 4).get()
        #expect(describe(read) == ["a 3..<5", "b 5..<7"])
        #expect(read.start == 3 && read.end == 7)
    }

    // A budget of one byte moves one byte, even at a layer boundary; a budget of 0 counts as 1.
    @Test func oneByteAtATime() throws {
        #expect(describe(try plan(twoByteLayers, tail: 9, from: at(4), maxBytes: 1).get()) == ["a 4..<5"])
        #expect(describe(try plan(twoByteLayers, tail: 9, from: at(5), maxBytes: 1).get()) == ["b 5..<6"])
        #expect(describe(try plan(twoByteLayers, tail: 9, from: .beginning, maxBytes: 0).get()) == ["a 0..<1"])
    }

    // Paging with any budget visits every byte once, in order, across the layers.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 9, 100]) func pagingCoversEveryByteOnce(_ maxBytes: Int) throws {
        let layers = [layer("a", 0..<3), layer("b", 3..<6), layer("c", 6..<9)]
        var covered: [UInt64] = []
        var start = ReadStart.beginning
        for _ in 0..<20 {
            let read = try plan(layers, tail: 9, from: start, maxBytes: maxBytes).get()
            #expect(read.end - read.start <= UInt64(maxBytes))
            for piece in read.pieces { covered += Array(piece.range) }
            if read.end == 9 { break }
            start = at(read.end)
        }
        #expect(covered == Array(0..<9))
    }

    // A read crosses several chained layers when the budget allows.
    @Test func aReadCrossesThreeLayers() throws {
        let layers = [layer("a", 0..<3), layer("b", 3..<6), layer("c", 6..<9)]
        let read = try plan(layers, tail: 9, from: at(2), maxBytes: 5).get()
        #expect(describe(read) == ["a 2..<3", "b 3..<6", "c 6..<7"])
    }

    // A read at the tail, or from "now", is empty.
    @Test func aReadAtTheTailIsEmpty() throws {
        for start in [ReadStart.now, at(9)] {
            let read = try plan(twoByteLayers, tail: 9, from: start).get()
            #expect(read.pieces.isEmpty && read.start == 9 && read.end == 9)
        }
    }

    // An offset past the tail is a 400.
    @Test func anOffsetPastTheTailIsABadRequest() {
        #expect(plan(twoByteLayers, tail: 9, from: at(10)).error?.status == .badRequest)
    }

    // JSON: a whole read takes every visible message and none of the source's later ones.
    @Test func jsonWholeRead() throws {
        let read = try plan(twoJSONLayers, tail: 10, from: .beginning).get()
        #expect(describe(read) == ["a 0..<4", "b 4..<10"])
    }

    // JSON: a budget ending exactly at the fork point stops there.
    @Test func jsonBudgetEndingAtTheForkPoint() throws {
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: .beginning, maxBytes: 4).get()) == ["a 0..<4"])
    }

    // JSON: the next layer's first message is taken only if it fits in what is left of the budget.
    @Test func jsonCrossesOnlyWithWholeMessages() throws {
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: .beginning, maxBytes: 5).get()) == ["a 0..<4"])
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: .beginning, maxBytes: 7).get()) == ["a 0..<4", "b 4..<7"])
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: at(2), maxBytes: 5).get()) == ["a 2..<4", "b 4..<7"])
    }

    // JSON: a message larger than the budget is still read whole when it is the first one.
    @Test func jsonFirstMessageMayExceedTheBudget() throws {
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: at(2), maxBytes: 1).get()) == ["a 2..<4"])
        #expect(describe(try plan(twoJSONLayers, tail: 10, from: at(4), maxBytes: 1).get()) == ["b 4..<7"])
        let big = [layer("a", 0..<10, ends(10)), layer("b", 10..<12, ends(12))]
        let read = try plan(big, tail: 12, from: .beginning, maxBytes: 3).get()
        #expect(describe(read) == ["a 0..<10"])
    }

    // JSON: a read may not start inside a message, nor at a source's message end past the fork point.
    @Test func jsonOffsetsMustBeVisibleBoundaries() {
        for position: UInt64 in [1, 3, 5, 6, 8, 9] {
            #expect(plan(twoJSONLayers, tail: 10, from: at(position)).error?.status == .badRequest, "offset \(position)")
        }
    }
}

@Suite("ForkLayers: forkPoint")
struct ForkLayersForkPointTests {
    private func point(_ layers: [ForkLayer<String>], tail: UInt64, anchor: UInt64, sub: UInt64, json: Bool)
        -> Result<UInt64, ProtocolError>
    {
        ForkLayers.forkPoint(layers, tail: tail, anchor: anchor, subOffset: sub, json: json)
    }

    // Bytes: the sub-offset adds bytes to the anchor, up to the tail exactly.
    @Test func byteSubOffsetsAddBytes() {
        #expect(point(twoByteLayers, tail: 9, anchor: 3, sub: 2, json: false).value == 5)
        #expect(point(twoByteLayers, tail: 9, anchor: 3, sub: 6, json: false).value == 9)
        #expect(point(twoByteLayers, tail: 9, anchor: 0, sub: 9, json: false).value == 9)
    }

    // A sub-offset of 0 is the anchor itself (bytes and JSON).
    @Test func subOffsetZeroIsTheAnchor() {
        #expect(point(twoByteLayers, tail: 9, anchor: 7, sub: 0, json: false).value == 7)
        #expect(point(twoJSONLayers, tail: 10, anchor: 4, sub: 0, json: true).value == 4)
        #expect(point(twoJSONLayers, tail: 10, anchor: 10, sub: 0, json: true).value == 10)
        #expect(point([layer("a", 0..<0, ends())], tail: 0, anchor: 0, sub: 0, json: true).value == 0)
    }

    // Bytes: a sub-offset past the tail, or one that overflows, is a 400.
    @Test func byteOvershootIsABadRequest() {
        #expect(point(twoByteLayers, tail: 9, anchor: 3, sub: 7, json: false).error?.status == .badRequest)
        #expect(point(twoByteLayers, tail: 9, anchor: 2, sub: .max, json: false).error?.status == .badRequest)
    }

    // An anchor past the tail is a 400.
    @Test func anAnchorPastTheTailIsABadRequest() {
        #expect(point(twoByteLayers, tail: 9, anchor: 10, sub: 0, json: false).error?.status == .badRequest)
        #expect(point(twoJSONLayers, tail: 10, anchor: 11, sub: 0, json: true).error?.status == .badRequest)
    }

    // JSON: the sub-offset counts whole messages after the anchor.
    @Test func jsonSubOffsetsCountMessages() {
        #expect(point(twoJSONLayers, tail: 10, anchor: 0, sub: 1, json: true).value == 2)
        #expect(point(twoJSONLayers, tail: 10, anchor: 0, sub: 2, json: true).value == 4)
        #expect(point(twoJSONLayers, tail: 10, anchor: 4, sub: 2, json: true).value == 10)
    }

    // JSON: counting crosses from a source's layer into the fork's, skipping the source's later messages.
    @Test func jsonSubOffsetsComposeAcrossLayers() {
        #expect(point(twoJSONLayers, tail: 10, anchor: 0, sub: 3, json: true).value == 7)
        #expect(point(twoJSONLayers, tail: 10, anchor: 2, sub: 2, json: true).value == 7)
        #expect(point(twoJSONLayers, tail: 10, anchor: 2, sub: 3, json: true).value == 10)
        let three = [layer("a", 0..<4, ends(2, 4, 6)), layer("b", 4..<7, ends(7, 10)), layer("c", 7..<9, ends(9))]
        #expect(point(three, tail: 9, anchor: 2, sub: 3, json: true).value == 9)
    }

    // JSON: more messages than there are is a 400 (also on an empty stream).
    @Test func jsonOvershootIsABadRequest() {
        #expect(point(twoJSONLayers, tail: 10, anchor: 0, sub: 5, json: true).error?.status == .badRequest)
        #expect(point(twoJSONLayers, tail: 10, anchor: 10, sub: 1, json: true).error?.status == .badRequest)
        #expect(point([layer("a", 0..<0, ends())], tail: 0, anchor: 0, sub: 1, json: true).error?.status == .badRequest)
    }

    // JSON: an anchor inside a message, or at a message end the stream does not see, is a 400.
    @Test func jsonAnchorMustBeABoundary() {
        for anchor: UInt64 in [1, 3, 5, 6, 8] {
            #expect(point(twoJSONLayers, tail: 10, anchor: anchor, sub: 0, json: true).error?.status == .badRequest, "anchor \(anchor)")
            #expect(point(twoJSONLayers, tail: 10, anchor: anchor, sub: 1, json: true).error?.status == .badRequest, "anchor \(anchor)")
        }
    }
}
