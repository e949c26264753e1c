import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The servers frame their responses as bytes; handler tests read them back as response parts
/// through NIO's own response decoder, so that what they check is what a client would parse.
public enum WrittenResponses {
    /// Every byte the channel has written so far, joined.
    public static func bytes(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var bytes = ByteBuffer()
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(var buffer) = data else { continue }
            bytes.writeBuffer(&buffer)
        }
        return bytes
    }

    /// The responses the channel has written so far, as a client decodes them. `headRequests`:
    /// how many of the first responses answer HEAD requests (they carry no body whatever their
    /// `Content-Length` says).
    public static func parts(_ channel: EmbeddedChannel, headRequests: Int = 0) throws -> [HTTPClientResponsePart] {
        let decoder = EmbeddedChannel()
        try decoder.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
        try decoder.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
        // The decoder learns from the requests written through it which responses have no body.
        for index in 0..<max(headRequests, 1) {
            let method: HTTPMethod = index < headRequests ? .HEAD : .GET
            try decoder.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
            try decoder.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        for _ in 0..<16 {
            try decoder.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
            try decoder.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        try decoder.writeInbound(try bytes(channel))
        var parts: [HTTPClientResponsePart] = []
        while let part = try decoder.readInbound(as: HTTPClientResponsePart.self) { parts.append(part) }
        _ = try? decoder.finish()
        return parts
    }
}
