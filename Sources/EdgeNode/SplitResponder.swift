import DurableStreams
import NIOCore
import ServerSupport

/// With `credentials = verify`: sends the requests whose target `takes` accepts to one
/// responder and all others to another. The edge's checks differ by path in two ways:
/// - `[[route]]` paths are checked like any other path (they need the edge's `otherPathsScope`),
///   but the edge's own upstream credential, which replaces a reader's on authorised stream
///   reads so that readers share cache entries, must never travel to a route's upstream, a
///   different server: route requests keep the client's own `Authorization`, as any reverse
///   proxy passes it.
/// - The protocol's control paths (`ControlPath`) are not checked at the edge at all: they
///   carry subscription tokens that only the origin can judge, and must reach it as sent.
struct SplitResponder: HTTPResponder {
    let takes: @Sendable (String) -> Bool
    let taken: any HTTPResponder
    let other: any HTTPResponder

    var maxBodyBytes: Int { other.maxBodyBytes }
    func refusal(_ error: ProtocolError) -> ServerReply { other.refusal(error) }
    func connectionOpened() { other.connectionOpened() }
    func connectionClosed() { other.connectionClosed() }

    func respond(to request: ServerRequest, live: LiveRequest, on loop: any EventLoop) -> ResponderAnswer {
        (takes(request.head.uri) ? taken : other).respond(to: request, live: live, on: loop)
    }
}
