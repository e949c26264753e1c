import NIOCore
import NIOHTTP1
import ServerSupport
import Testing

@Suite("EncodedResponse and ResponseHeadEncoder")
struct EncodedResponseTests {
    @Test func aHeadIsSerializedWithItsLengthAndWithoutHopByHopFraming() {
        let head = HTTPResponseHead(
            version: .http1_1, status: .ok, headers: ["Content-Type": "text/plain", "Transfer-Encoding": "chunked", "Connection": "keep-alive"])
        let encoded = EncodedResponse(head, body: ByteBuffer(string: "hello"))
        #expect(String(buffer: encoded.headLines) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n")
        #expect(String(buffer: encoded.body) == "hello")
        // The head it came from is kept as given, for readers of its facts.
        #expect(encoded.head.headers.first(name: "Transfer-Encoding") == "chunked")
    }

    @Test func aStatusWithoutBodyCarriesNeitherLengthNorBody() {
        let head = HTTPResponseHead(version: .http1_1, status: .notModified, headers: ["ETag": "\"x\"", "Content-Length": "5"])
        let encoded = EncodedResponse(head, body: ByteBuffer(string: "hello"))
        #expect(String(buffer: encoded.headLines) == "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n")
        #expect(encoded.body.readableBytes == 0)
    }

    @Test func aLengthGivenIsKept() {
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"])
        #expect(String(buffer: EncodedResponse(head, body: ByteBuffer()).headLines) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")
    }

    @Test(arguments: [0, 7, 10, 99, 1234, 65_536, Int.max])
    func decimalsAreWrittenWithoutStrings(value: Int) {
        var buffer = ByteBuffer()
        ResponseHeadEncoder.writeDecimal(value, into: &buffer)
        #expect(String(buffer: buffer) == String(value))
    }

    @Test func extraLinesFollowTheSharedOnes() {
        var extra = ExtraHeaderLines()
        extra.add(name: "X-Cache", value: "HIT")
        extra.add(name: "Age", value: "3")
        #expect(String(buffer: extra.bytes) == "X-Cache: HIT\r\nAge: 3\r\n")
    }
}
