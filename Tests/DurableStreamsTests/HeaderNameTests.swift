import DurableStreams
import Testing

@Suite("Protocol header names")
struct HeaderNameTests {
    @Test(arguments: ["true", "TRUE", "True", "tRuE"])
    func streamClosedTrueIsCaseInsensitive(value: String) {
        #expect(HeaderName.isTrue(value))
    }

    @Test(arguments: [nil, "", "false", "1", "yes", " true", "true ", "truee", "tru", "on"] as [String?])
    func anyOtherValueCountsAsAbsent(value: String?) {
        #expect(!HeaderName.isTrue(value))
    }

    @Test func browsersMayReadTheProtocolHeaders() {
        let exposed = Set(HeaderName.exposedToBrowsers)
        for name in [HeaderName.nextOffset, HeaderName.cursor, HeaderName.upToDate, HeaderName.closed,
                     HeaderName.producerEpoch, HeaderName.producerSeq, HeaderName.producerExpectedSeq,
                     HeaderName.producerReceivedSeq, HeaderName.sseDataEncoding, "ETag", "Location"] {
            #expect(exposed.contains(name), "\(name)")
        }
    }

    @Test func browsersMaySendTheProtocolHeaders() {
        let accepted = Set(HeaderName.acceptedFromBrowsers)
        for name in [HeaderName.seq, HeaderName.ttl, HeaderName.expiresAt, HeaderName.closed, HeaderName.producerID,
                     HeaderName.producerEpoch, HeaderName.producerSeq, "Content-Type", "If-None-Match"] {
            #expect(accepted.contains(name), "\(name)")
        }
    }

    @Test func spellings() {
        #expect(HeaderName.nextOffset == "Stream-Next-Offset")
        #expect(HeaderName.closed == "Stream-Closed")
        #expect(HeaderName.upToDate == "Stream-Up-To-Date")
        #expect(HeaderName.cursor == "Stream-Cursor")
        #expect(HeaderName.producerExpectedSeq == "Producer-Expected-Seq")
    }

    @Test(arguments: [("Content-Length", "content-length"), ("X-CACHE", "x-cache"), ("age", "Age"), ("TE", "te")])
    func namesEqualIgnoringCase(a: String, b: String) {
        #expect(HeaderName.equalIgnoringCase(a, b))
    }

    /// Only ASCII letters fold: `@` and `` ` `` differ by the case bit but are not letters, and
    /// names of different lengths or spellings differ.
    @Test(arguments: [("a@b", "a`b"), ("age", "ages"), ("age", "agf"), ("[", "{"), ("", "x")])
    func namesThatDiffer(a: String, b: String) {
        #expect(!HeaderName.equalIgnoringCase(a, b))
    }

    @Test func trimmingASCIIOnlyTrimsTheEdges() {
        #expect(Substring(" \t max-age \t").trimmingASCII(" \t") == "max-age")
        #expect(Substring("\"10\"").trimmingASCII("\"") == "10")
        #expect(Substring("   ").trimmingASCII(" ") == "")
        #expect(Substring("a b").trimmingASCII(" ") == "a b")
        #expect(Substring("é ").trimmingASCII(" ") == "é")
    }
}
