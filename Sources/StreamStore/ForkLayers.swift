import DurableStreams

/// One stretch of a stream's offset space and the stream whose bytes fill it.
///
/// A fork shares its source's offsets (§4.2): positions below its fork point are the source's
/// bytes, read in place, and positions from the fork point on are its own. A chain of forks is
/// therefore a list of layers, oldest ancestor first, each covering `range` with bytes of
/// `owner`. `boundaries` are the owner's message ends (JSON streams); those past `range` are the
/// owner's later appends, which the layer ignores.
struct ForkLayer<Owner> {
    var owner: Owner
    var range: Range<UInt64>
    var boundaries: MessageBoundaries
}

/// A read planned over layers: `[start, end)` and the owner range each part comes from.
struct LayeredRead<Owner> {
    var start: UInt64
    var end: UInt64
    var pieces: [(owner: Owner, range: Range<UInt64>)]
}

/// The pure rules for reading and addressing a stream made of layers, shared by every store.
enum ForkLayers {
    /// How many forks deep a chain may go. Every read of a fork walks its chain, so a client
    /// forking forks without end would make each read slower; no real use comes near this.
    static let maxDepth = 256

    /// The refusal of a fork that would be deeper than `maxDepth`.
    static let tooDeep = ProtocolError(.badRequest, "fork chain too deep: at most \(maxDepth) forks of forks")

    /// How many forks deep `owner` is (0 for a stream that is not a fork), counting at most
    /// `maxDepth + 1` steps.
    static func depth<Owner>(of owner: Owner, source: (Owner) -> Owner?) -> Int {
        var depth = 0
        var next = source(owner)
        while let current = next, depth <= maxDepth {
            depth += 1
            next = source(current)
        }
        return depth
    }

    /// What `collect` needs to know of one stream of a chain.
    struct Facts<Owner> {
        /// Where its own bytes start (its fork point; 0 for a stream that is not a fork).
        var base: UInt64
        var tail: UInt64
        var boundaries: MessageBoundaries
        /// The stream it was forked from.
        var source: Owner?
    }

    /// The layers of `owner`, oldest ancestor first: its own bytes from its base to its tail,
    /// then, while there is a source, the source's bytes below the fork point, and so on up the
    /// chain (a source's bytes past a later fork point are never reached).
    static func collect<Owner>(_ owner: Owner, describe: (Owner) -> Facts<Owner>?) -> [ForkLayer<Owner>] {
        guard let top = describe(owner) else { return [] }
        var layers = [ForkLayer(owner: owner, range: top.base..<max(top.base, top.tail), boundaries: top.boundaries)]
        var limit = top.base
        var next = top.source
        while limit > 0, let current = next, let facts = describe(current) {
            let upper = min(limit, facts.tail)
            if facts.base < upper {
                layers.append(ForkLayer(owner: current, range: facts.base..<upper, boundaries: facts.boundaries))
            }
            limit = min(limit, facts.base)
            next = facts.source
        }
        return layers.reversed()
    }

    /// Whether a read may start at `position` of a stream whose layers are `layers`.
    static func isBoundary<Owner>(_ position: UInt64, in layers: [ForkLayer<Owner>], tail: UInt64) -> Bool {
        guard position < tail else { return position == tail }
        guard let layer = layers.first(where: { $0.range.contains(position) }) else { return false }
        return position == layer.range.lowerBound || layer.boundaries.isBoundary(position, length: layer.range.upperBound)
    }

    /// Plans a read of up to `maxBytes` from `start`: whole messages for JSON streams, at least
    /// one, crossing from one layer into the next while the budget lasts.
    static func plan<Owner>(_ layers: [ForkLayer<Owner>], tail: UInt64, from start: ReadStart, maxBytes: Int)
        -> Result<LayeredRead<Owner>, ProtocolError>
    {
        let from: UInt64
        switch start {
        case .beginning: from = 0
        case .now: from = tail
        case .offset(let offset):
            guard offset.position <= tail else {
                return .failure(ProtocolError(.badRequest, "offset is beyond the end of the stream"))
            }
            guard isBoundary(offset.position, in: layers, tail: tail) else {
                return .failure(ProtocolError(.badRequest, "offset is not a message boundary"))
            }
            from = offset.position
        }
        var read = LayeredRead<Owner>(start: from, end: from, pieces: [])
        var remaining = UInt64(max(maxBytes, 1))
        for layer in layers where layer.range.upperBound > read.end && remaining > 0 {
            // Layers cover the stream from 0; a gap means a source's data is missing (damage).
            guard layer.range.lowerBound <= read.end else {
                return .failure(ProtocolError(.internalServerError, "a fork's inherited data is missing"))
            }
            let end = layer.boundaries.readEnd(from: read.end, maxBytes: Int(clamping: remaining), length: layer.range.upperBound)
            // Only the first part may exceed the budget (one message larger than it).
            if !read.pieces.isEmpty && end - read.end > remaining { break }
            if end > read.end { read.pieces.append((layer.owner, read.end..<end)) }
            remaining -= min(remaining, end - read.end)
            read.end = end
            if end < layer.range.upperBound { break }
        }
        return .success(read)
    }

    /// Where a fork made at `anchor` plus `subOffset` diverges: `subOffset` bytes further for a
    /// byte stream, the end of the `subOffset`-th message after the anchor for a JSON stream.
    static func forkPoint<Owner>(
        _ layers: [ForkLayer<Owner>], tail: UInt64, anchor: UInt64, subOffset: UInt64, json: Bool
    ) -> Result<UInt64, ProtocolError> {
        guard anchor <= tail else {
            return .failure(ProtocolError(.badRequest, "\(ForkRequest.offsetHeader) is beyond the source's tail"))
        }
        guard isBoundary(anchor, in: layers, tail: tail) else {
            return .failure(ProtocolError(.badRequest, "\(ForkRequest.offsetHeader) is not a message boundary of the source"))
        }
        let overshoot = ProtocolError(.badRequest, "\(ForkRequest.subOffsetHeader) is past the source's data")
        guard subOffset > 0 else { return .success(anchor) }
        guard json else {
            let (point, overflow) = anchor.addingReportingOverflow(subOffset)
            return !overflow && point <= tail ? .success(point) : .failure(overshoot)
        }
        var remaining = subOffset
        for layer in layers where layer.range.upperBound > anchor {
            guard let ends = layer.boundaries.ends else { break }
            let low = max(anchor, layer.range.lowerBound)
            // Message ends inside (low, upper].
            let first = MessageBoundaries.search(ends, low + 1).index
            let past = MessageBoundaries.search(ends, layer.range.upperBound + 1).index
            let count = UInt64(max(0, past - first))
            if remaining <= count { return .success(ends[first + Int(remaining) - 1]) }
            remaining -= count
        }
        return .failure(overshoot)
    }
}
