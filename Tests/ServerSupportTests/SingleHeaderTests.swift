import NIOHTTP1
import ServerSupport
import Testing

@Suite("A header that may appear once")
struct SingleHeaderTests {
    @Test func absentOnceOrRepeatedWhateverTheCase() {
        #expect(HTTPHeaders([("Host", "a")]).single("Authorization") == .absent)
        #expect(HTTPHeaders([("authorization", "Bearer x")]).single("Authorization") == .one("Bearer x"))
        #expect(HTTPHeaders([("Authorization", "Bearer x"), ("AUTHORIZATION", "Bearer y")]).single("Authorization") == .repeated)
        #expect(SingleHeader.repeated.value == nil)
        #expect(SingleHeader.one("v").value == "v")
    }
}
