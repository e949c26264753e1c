import DurableStreams

extension Fuzz {
    /// `Stream-TTL` and `Stream-Expires-At`: the strict TTL grammar and the RFC 3339 parser.
    ///
    /// Input: one header value.
    public static func lifetime(_ input: UnsafeRawBufferPointer) {
        let text = FuzzInput.text(input)
        if let seconds = StreamLifetime.parseTTL(text) {
            check(String(seconds) == text, "TTL \(text) accepted in a non-canonical form")
        }
        if let instant = StreamLifetime.parseRFC3339(text) {
            check(instant.isFinite, "RFC 3339 instant not finite")
            // Spellings of the same instant must agree: padding, `Z` against `+00:00`, case.
            check(StreamLifetime.parseRFC3339(" \t" + text + " ") == instant, "padding changes the instant of \(text)")
            if text.hasSuffix("Z") || text.hasSuffix("z") {
                let numeric = String(text.dropLast()) + "+00:00"
                check(StreamLifetime.parseRFC3339(numeric) == instant, "\(text) and \(numeric) disagree")
            }
            let lower = String(decoding: text.utf8.map { $0 == UInt8(ascii: "T") ? UInt8(ascii: "t") : $0 }, as: UTF8.self)
            check(StreamLifetime.parseRFC3339(lower) == instant, "a lowercase t changes the instant of \(text)")
        }
        check((try? StreamLifetime(ttlHeader: text, expiresAtHeader: text)) == nil, "TTL and Expires-At accepted together")
        for lifetime in [try? StreamLifetime(ttlHeader: text, expiresAtHeader: nil), try? StreamLifetime(ttlHeader: nil, expiresAtHeader: text)] {
            if let lifetime { checkLifetimeRoundTrip(lifetime) }
        }
    }

    /// What the origin echoes (`Stream-TTL`, `Stream-Expires-At`) must parse back to the same
    /// lifetime: an idempotent PUT compares them.
    static func checkLifetimeRoundTrip(_ lifetime: StreamLifetime) {
        let headers = lifetime.headers
        let ttl = headers.first { $0.0 == HeaderName.ttl }?.1
        let expires = headers.first { $0.0 == HeaderName.expiresAt }?.1
        let again = try? StreamLifetime(ttlHeader: ttl, expiresAtHeader: expires)
        check(again.map { $0.matches(lifetime) } == true, "lifetime \(lifetime) does not survive its own headers")
        if let expiry = lifetime.expiry(lastAccess: 1_760_000_000) { check(expiry.isFinite, "expiry not finite") }
    }

    /// `Producer-Id`, `Producer-Epoch`, `Producer-Seq` over a run of appends, each claim checked
    /// against the state the earlier accepted ones left, as the store does.
    ///
    /// Input: lines in threes (id, epoch, seq); a short last group lacks headers.
    public static func producer(_ input: UnsafeRawBufferPointer) {
        let lines = FuzzInput.lines(input, droppingCR: true)
        var states: [String: ProducerState] = [:]
        var index = 0
        while index < lines.count {
            let group = lines[index..<min(index + 3, lines.count)].map { trimmed(Substring($0)) }
            index += 3
            let id = group.first, epoch = group.count > 1 ? group[1] : nil, seq = group.count > 2 ? group[2] : nil
            let claim: ProducerClaim?
            do {
                claim = try ProducerClaim(id: id, epoch: epoch, seq: seq)
            } catch {
                check(error.status == .badRequest, "producer headers rejected with \(error)")
                continue
            }
            guard let claim else { preconditionFailure("no claim from present headers") }
            check(claim.epoch <= ProducerClaim.maxValue && claim.seq <= ProducerClaim.maxValue, "producer number beyond 2^53-1")
            check(UInt64(epoch!) == claim.epoch && UInt64(seq!) == claim.seq, "producer numbers misread")
            let old = states[claim.id]
            let decision = claim.validate(against: old)
            switch decision {
            case .accept(let new):
                check(new.epoch == claim.epoch && new.lastSeq == claim.seq, "accepted state is not the claim")
                if let old {
                    check(new.epoch > old.epoch ? claim.seq == 0 : new.epoch == old.epoch && new.lastSeq == old.lastSeq + 1, "accepted out of order")
                } else {
                    check(claim.seq == 0, "an unknown producer accepted past sequence 0")
                }
                states[claim.id] = new
            case .duplicate(let state):
                check(state == old && claim.epoch == state.epoch && claim.seq <= state.lastSeq, "duplicate misjudged")
            case .staleEpoch(let current):
                check(current == old?.epoch && claim.epoch < current, "stale epoch misjudged")
            case .gap(let expected, let received):
                check(received == claim.seq && expected != received, "gap misjudged")
                check(expected == (old.map { $0.lastSeq + 1 } ?? 0), "gap expects the wrong sequence")
            case .newEpochNotAtZero:
                check(old.map { claim.epoch > $0.epoch } == true && claim.seq != 0, "new epoch misjudged")
            }
        }
    }

    /// `If-None-Match` against the entity tags the servers make.
    ///
    /// Input: line 1 the header value, line 2 a stream id.
    public static func etag(_ input: UnsafeRawBufferPointer) {
        let lines = FuzzInput.lines(input)
        let header = lines[0]
        let streamID = lines.count > 1 ? lines[1] : "s-1"
        let seed = FuzzInput.hash(input)
        let end = StreamOffset(position: seed % (StreamOffset.maxPosition + 1))
        let start = StreamOffset(position: end.position / 2)
        let tag = EntityTag.make(streamID: streamID, start: start, end: end, closed: seed & 1 == 0)
        let matches = EntityTag.ifNoneMatch(header, matches: tag)
        // More candidates never turn a match into a miss.
        if matches {
            check(EntityTag.ifNoneMatch(header + ", \"other\"", matches: tag), "appending a tag lost the match")
            check(EntityTag.ifNoneMatch("\"other\", " + header, matches: tag), "prepending a tag lost the match")
        }
        check(EntityTag.ifNoneMatch(header + ", *", matches: tag), "'*' does not match")
        // Stream ids are ours: letters, digits, '-', '_', '.'. Such a tag always matches itself.
        let plainID = streamID.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E
        }
        if plainID {
            check(EntityTag.ifNoneMatch(tag, matches: tag), "\(tag) does not match itself")
            check(EntityTag.ifNoneMatch(" W/" + tag + "\t", matches: tag), "weak \(tag) does not match")
            let other = EntityTag.make(streamID: streamID, start: start, end: end, closed: seed & 1 != 0)
            check(!EntityTag.ifNoneMatch(tag, matches: other), "open and closed tags match")
        }
    }

    /// `Content-Type`: what a stream is created with and appends are compared by.
    ///
    /// Input: one header value.
    public static func contentType(_ input: UnsafeRawBufferPointer) {
        let text = FuzzInput.text(input)
        guard let type = ContentType(text) else { return }
        let media = type.mediaType
        check(media.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !($0 >= 0x41 && $0 <= 0x5A) }, "media type '\(media)' not lowercase ASCII")
        check(media.utf8.filter { $0 == UInt8(ascii: "/") }.count == 1, "media type '\(media)' without exactly one '/'")
        check(!media.hasPrefix("/") && !media.hasSuffix("/"), "media type '\(media)' with an empty half")
        let again = ContentType(type.headerValue)
        check(again?.mediaType == media && again?.headerValue == type.headerValue, "'\(text)' does not parse back to itself")
        check(ContentType(media) == type, "the media type alone is a different type")
        let upper = String(decoding: text.utf8.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
        check(ContentType(upper) == type, "case changes the type of '\(text)'")
        check(!type.isJSON || type.isTextual, "JSON but not textual")
    }
}
