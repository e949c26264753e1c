import DurableStreams
import EdgeNode
import Testing

@Suite("CacheKey")
struct CacheKeyTests {
    let offset = StreamOffset(position: 42)

    @Test func beginningHasOneSpelling() {
        let a = CacheKey(stream: "/v1/stream/a", start: .beginning, mode: .catchUp, credentials: nil)
        let b = CacheKey(stream: "/v1/stream/a", start: .offset(.zero), mode: .catchUp, credentials: nil)
        #expect(a != nil && a != b)
        #expect(a == CacheKey(stream: "/v1/stream/a", start: .beginning, mode: .catchUp, credentials: nil))
    }

    @Test func cursorOnlyMattersToLiveReads() {
        let one = CacheKey(stream: "/s", start: .offset(offset), mode: .longPoll(cursor: "1"), credentials: nil)
        let two = CacheKey(stream: "/s", start: .offset(offset), mode: .longPoll(cursor: "2"), credentials: nil)
        let catchUp = CacheKey(stream: "/s", start: .offset(offset), mode: .catchUp, credentials: nil)
        #expect(one != two)
        #expect(one != catchUp)
    }

    @Test func nowAndSSEAreNeverCached() {
        #expect(CacheKey(stream: "/s", start: .now, mode: .catchUp, credentials: nil) == nil)
        #expect(CacheKey(stream: "/s", start: .beginning, mode: .sse(cursor: nil), credentials: nil) == nil)
    }

    @Test func credentialsPartitionAndAreNeverPrinted() {
        let alice = CacheKey(stream: "/s", start: .beginning, mode: .catchUp, credentials: "Bearer alice")
        let bob = CacheKey(stream: "/s", start: .beginning, mode: .catchUp, credentials: "Bearer bob")
        #expect(alice != bob)
        #expect(alice != CacheKey(stream: "/s", start: .beginning, mode: .catchUp, credentials: nil))
        #expect(!(alice?.description.contains("alice") ?? true))
    }
}
