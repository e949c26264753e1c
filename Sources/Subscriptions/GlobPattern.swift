/// A subscription's `pattern` (§6.2): a glob over stream-root-relative stream paths, matched
/// segment by segment. `*` as a whole segment matches exactly one segment, `**` matches zero or
/// more; inside a segment `*` matches any run of characters of that segment (`logs-*`). Every
/// other character matches itself, byte for byte, like stream names are compared.
public struct GlobPattern: Sendable, Hashable, CustomStringConvertible {
    enum Segment: Sendable, Hashable {
        case any
        case anyDepth
        case literal([UInt8])
        /// Literal pieces separated by `*` within one segment.
        case wildcard([[UInt8]])
    }

    /// The longest pattern accepted, like a stream name.
    public static let maxLength = 1024

    let segments: [Segment]
    public let description: String

    /// Parses a pattern; `nil` for one that is empty, too long, has empty segments, a `**`
    /// that is not a whole segment, or control characters.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength else { return nil }
        guard !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        var segments: [Segment] = []
        for part in text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let bytes = Array(part)
            guard !bytes.isEmpty else { return nil }
            if bytes == [UInt8(ascii: "*")] {
                segments.append(.any)
            } else if bytes == [UInt8(ascii: "*"), UInt8(ascii: "*")] {
                // Consecutive `**` mean the same as one; keeping one bounds the matcher's work.
                if segments.last != .anyDepth { segments.append(.anyDepth) }
            } else if bytes.contains(UInt8(ascii: "*")) {
                let pieces = bytes.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
                // `**` inside a segment would suggest crossing segments, which it cannot.
                guard !bytes.windows(ofCount: 2).contains(where: { $0.allSatisfy { $0 == UInt8(ascii: "*") } }) else { return nil }
                segments.append(.wildcard(pieces))
            } else {
                segments.append(.literal(bytes))
            }
        }
        self.segments = segments
        self.description = text
    }

    /// Whether `path` (a canonical stream name) matches.
    public func matches(_ path: String) -> Bool {
        let parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        // Positions in the pattern reachable after each prefix of the path: a linear-time
        // simulation, so no pattern can make matching exponential.
        var states = Set([0])
        Self.closeOverAnyDepth(&states, segments)
        for part in parts {
            var next = Set<Int>()
            for state in states where state < segments.count {
                switch segments[state] {
                case .anyDepth: next.insert(state)
                case .any: next.insert(state + 1)
                case .literal(let bytes): if bytes == part { next.insert(state + 1) }
                case .wildcard(let pieces): if Self.wildcard(pieces, matches: part) { next.insert(state + 1) }
                }
            }
            Self.closeOverAnyDepth(&next, segments)
            states = next
            if states.isEmpty { return false }
        }
        return states.contains(segments.count)
    }

    /// Adds, for every state at a `**`, the state after it (the `**` matching nothing more).
    private static func closeOverAnyDepth(_ states: inout Set<Int>, _ segments: [Segment]) {
        var work = Array(states)
        while let state = work.popLast() {
            if state < segments.count, segments[state] == .anyDepth, states.insert(state + 1).inserted {
                work.append(state + 1)
            }
        }
    }

    /// `pieces` are the literal runs between `*`s: the first must start the segment, the last
    /// end it, the others appear in order between them (greedy leftmost is exact here).
    static func wildcard(_ pieces: [[UInt8]], matches segment: [UInt8]) -> Bool {
        guard let first = pieces.first, let last = pieces.last, pieces.count >= 2 else { return pieces.first == segment }
        guard segment.count >= first.count + last.count, segment.starts(with: first), segment.suffix(last.count).elementsEqual(last)
        else { return false }
        var position = first.count
        let end = segment.count - last.count
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let found = find(piece, in: segment, from: position, before: end) else { return false }
            position = found + piece.count
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, before end: Int) -> Int? {
        guard end - start >= needle.count else { return nil }
        for index in start...(end - needle.count) where haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        return nil
    }
}

extension Array {
    fileprivate func windows(ofCount count: Int) -> [ArraySlice<Element>] {
        guard self.count >= count else { return [] }
        return (0...(self.count - count)).map { self[$0..<($0 + count)] }
    }
}
