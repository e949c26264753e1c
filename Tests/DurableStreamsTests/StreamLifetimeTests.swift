import DurableStreams
import Testing

@Suite("StreamLifetime: Stream-TTL and Stream-Expires-At")
struct StreamLifetimeTests {
    // 2025-01-01T00:00:00Z
    static let newYear2025: Double = 1_735_689_600

    // MARK: Stream-TTL

    @Test(arguments: [("0", UInt64(0)), ("1", 1), ("60", 60), ("3600", 3600), ("7200", 7200),
                      ("9999999999999999999", 9_999_999_999_999_999_999)])
    func validTTLs(text: String, seconds: UInt64) {
        #expect(StreamLifetime.parseTTL(text) == seconds)
    }

    @Test(arguments: ["", "+60", "060", "00060", "00", "6.0", "60.5", "1e3", "-1", "-0", "abc", " 60", "60 ",
                      "6 0", "0x10", "٣", "６０", "18446744073709551616", "99999999999999999999"])
    func invalidTTLs(text: String) {
        #expect(StreamLifetime.parseTTL(text) == nil)
    }

    @Test func noHeadersMeansUnlimited() throws {
        #expect(try StreamLifetime(ttlHeader: nil, expiresAtHeader: nil) == .unlimited)
    }

    @Test func ttlHeaderGivesASlidingLifetime() throws {
        let lifetime = try StreamLifetime(ttlHeader: "3600", expiresAtHeader: nil)
        #expect(lifetime == .ttl(seconds: 3600))
        #expect(lifetime.isSliding)
    }

    @Test func zeroTTLIsAccepted() throws {
        #expect(try StreamLifetime(ttlHeader: "0", expiresAtHeader: nil) == .ttl(seconds: 0))
    }

    @Test(arguments: ["", "+60", "060", "6.0", "1e3", "-1", "abc"])
    func invalidTTLHeaderIsABadRequest(text: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamLifetime(ttlHeader: text, expiresAtHeader: nil) }
        #expect(error?.status == .badRequest)
    }

    @Test func bothHeadersAreABadRequest() {
        let error = #expect(throws: ProtocolError.self) {
            try StreamLifetime(ttlHeader: "60", expiresAtHeader: "2025-01-01T00:00:00Z")
        }
        #expect(error?.status == .badRequest)
    }

    @Test func bothHeadersAreABadRequestEvenWhenOneIsInvalid() {
        let error = #expect(throws: ProtocolError.self) { try StreamLifetime(ttlHeader: "abc", expiresAtHeader: "garbage") }
        #expect(error?.status == .badRequest)
    }

    // MARK: Stream-Expires-At

    @Test func expiresAtHeaderGivesAnAbsoluteLifetime() throws {
        let lifetime = try StreamLifetime(ttlHeader: nil, expiresAtHeader: "2025-01-01T00:00:00Z")
        #expect(lifetime == .expiresAt(seconds: Self.newYear2025, text: "2025-01-01T00:00:00Z"))
        #expect(!lifetime.isSliding)
    }

    @Test func expiresAtTextIsTrimmed() throws {
        let lifetime = try StreamLifetime(ttlHeader: nil, expiresAtHeader: "  2025-01-01T00:00:00Z\t")
        #expect(lifetime == .expiresAt(seconds: Self.newYear2025, text: "2025-01-01T00:00:00Z"))
    }

    @Test(arguments: ["not-a-timestamp", "2025-01-01", "", "tomorrow"])
    func invalidExpiresAtHeaderIsABadRequest(text: String) {
        let error = #expect(throws: ProtocolError.self) { try StreamLifetime(ttlHeader: nil, expiresAtHeader: text) }
        #expect(error?.status == .badRequest)
    }

    @Test func rfc3339WithZ() {
        #expect(StreamLifetime.parseRFC3339("2025-01-01T00:00:00Z") == Self.newYear2025)
    }

    @Test func rfc3339WithNumericOffsets() {
        #expect(StreamLifetime.parseRFC3339("2025-01-01T02:00:00+02:00") == Self.newYear2025)
        #expect(StreamLifetime.parseRFC3339("2024-12-31T19:00:00-05:00") == Self.newYear2025)
        #expect(StreamLifetime.parseRFC3339("2025-01-01T00:00:00+00:00") == Self.newYear2025)
    }

    @Test func rfc3339WithFractionalSeconds() throws {
        let millis = try #require(StreamLifetime.parseRFC3339("2025-01-01T00:00:00.123Z"))
        #expect(abs(millis - (Self.newYear2025 + 0.123)) < 0.0005)
        let half = try #require(StreamLifetime.parseRFC3339("2025-01-01T02:00:00.5+02:00"))
        #expect(abs(half - (Self.newYear2025 + 0.5)) < 0.0005)
    }

    @Test func rfc3339AsJavaScriptToISOStringProducesIt() {
        #expect(StreamLifetime.parseRFC3339("2025-06-15T12:34:56.789Z") != nil)
    }

    @Test(arguments: [
        "", "not-a-timestamp", "garbage garbage garbage", "1735689600", "2025-01-01",
        "2025-01-01T00:00", "2025-01-01T00:00Z", "2025-01-01T00:00:00", "2025-01-01 00:00:00Z",
        "2025-13-01T00:00:00Z", "2025-01-01T25:00:00Z", "2025-1-01T00:00:00Z", "T2025-01-01 00:00:00Z",
    ])
    func rfc3339RejectsGarbageAndDatesWithoutTime(text: String) {
        #expect(StreamLifetime.parseRFC3339(text) == nil)
    }

    @Test(arguments: ["2025-01-01T00:00:00Zjunk", "2025-01-01T00:00:00ZZ"])
    func rfc3339RejectsTrailingGarbage(text: String) {
        #expect(StreamLifetime.parseRFC3339(text) == nil)
    }

    @Test(arguments: ["2025-02-30T00:00:00Z", "2025-01-01T00:00:00+0200"])
    func rfc3339RejectsNonRFC3339Forms(text: String) {
        #expect(StreamLifetime.parseRFC3339(text) == nil)
    }

    // MARK: Behaviour

    @Test func expiry() {
        #expect(StreamLifetime.unlimited.expiry(lastAccess: 100) == nil)
        #expect(StreamLifetime.ttl(seconds: 60).expiry(lastAccess: 100) == 160)
        #expect(StreamLifetime.ttl(seconds: 0).expiry(lastAccess: 100) == 100)
        // An absolute expiry ignores the last access.
        #expect(StreamLifetime.expiresAt(seconds: 500, text: "x").expiry(lastAccess: 100) == 500)
        #expect(StreamLifetime.expiresAt(seconds: 500, text: "x").expiry(lastAccess: 450) == 500)
    }

    @Test func onlyTTLIsSliding() {
        #expect(StreamLifetime.ttl(seconds: 1).isSliding)
        #expect(!StreamLifetime.unlimited.isSliding)
        #expect(!StreamLifetime.expiresAt(seconds: 1, text: "x").isSliding)
    }

    @Test func headersDescribeTheLifetime() {
        #expect(StreamLifetime.unlimited.headers.isEmpty)
        let ttl = StreamLifetime.ttl(seconds: 3600).headers
        #expect(ttl.count == 1)
        #expect(ttl.first?.0 == HeaderName.ttl)
        #expect(ttl.first?.1 == "3600")
        let expires = StreamLifetime.expiresAt(seconds: Self.newYear2025, text: "2025-01-01T02:00:00+02:00").headers
        #expect(expires.count == 1)
        #expect(expires.first?.0 == HeaderName.expiresAt)
        #expect(expires.first?.1 == "2025-01-01T02:00:00+02:00")
    }

    @Test func matchingForIdempotentCreate() {
        #expect(StreamLifetime.unlimited.matches(.unlimited))
        #expect(StreamLifetime.ttl(seconds: 3600).matches(.ttl(seconds: 3600)))
        #expect(!StreamLifetime.ttl(seconds: 3600).matches(.ttl(seconds: 7200)))
        #expect(!StreamLifetime.ttl(seconds: 3600).matches(.unlimited))
        #expect(!StreamLifetime.unlimited.matches(.ttl(seconds: 3600)))
        // The same instant spelled differently matches.
        #expect(StreamLifetime.expiresAt(seconds: 10, text: "a").matches(.expiresAt(seconds: 10, text: "b")))
        #expect(!StreamLifetime.expiresAt(seconds: 10, text: "a").matches(.expiresAt(seconds: 11, text: "a")))
        #expect(!StreamLifetime.expiresAt(seconds: 10, text: "a").matches(.ttl(seconds: 10)))
        #expect(!StreamLifetime.expiresAt(seconds: 10, text: "a").matches(.unlimited))
    }
}
