import DurableStreams
import NIOHTTP1

/// The head of an SSE response (§5.8), the same from the origin and the edge.
public enum SSEResponseHead {
    /// `base64`: the stream's content type is not textual, so events carry base64 (the
    /// `stream-sse-data-encoding` header says so).
    public static func make(base64: Bool) -> HTTPResponseHead {
        var headers = BrowserHeaders.headers
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        // The connection closes when the response ends (`SSEOutput.finish`); saying so up front
        // keeps clients from sending their next request into a closing socket.
        headers.add(name: "Connection", value: "close")
        if base64 { headers.add(name: HeaderName.sseDataEncoding, value: "base64") }
        return HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
    }
}
