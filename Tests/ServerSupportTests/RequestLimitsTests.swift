import NIOCore
import NIOHTTP1
import ServerSupport
import Testing

@Suite("Request limits: Host rules and the request-body budget")
struct RequestLimitsTests {
    func head(version: HTTPVersion = .http1_1, _ headers: HTTPHeaders) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .POST, uri: "/v1/stream/x", headers: headers)
    }

    func rejection(_ action: RequestStateMachine.Action) -> Int? {
        if case .rejectAndClose(let error) = action { return error.status.rawValue }
        return nil
    }

    @Test(arguments: [
        HTTPHeaders(),  // no Host in HTTP/1.1
        HTTPHeaders([("Host", "a"), ("Host", "b")]),
        HTTPHeaders([("Host", "a"), ("host", "a")]),
        HTTPHeaders([("Host", "a, b")]),
    ])
    func http11NeedsExactlyOneHost(headers: HTTPHeaders) {
        var machine = RequestStateMachine(maxBodyBytes: 100)
        #expect(rejection(machine.receivedHead(head(headers))) == 400)
    }

    @Test func oneHostIsFineAndHTTP10MayOmitIt() {
        var machine = RequestStateMachine(maxBodyBytes: 100)
        #expect(machine.receivedHead(head(["Host": "a"])) == .none)
        var old = RequestStateMachine(maxBodyBytes: 100)
        #expect(old.receivedHead(head(version: .http1_0, [:])) == .none)
        var twice = RequestStateMachine(maxBodyBytes: 100)
        #expect(rejection(twice.receivedHead(head(version: .http1_0, HTTPHeaders([("Host", "a"), ("Host", "b")])))) == 400)
    }

    @Test func bodiesCountAgainstTheSharedBudgetUntilTheRequestIsComplete() {
        let budget = RequestBodyBudget(limit: 1000)
        var first = HTTPConnection(maxBodyBytes: 10_000, bodyBudget: budget)
        var second = HTTPConnection(maxBodyBytes: 10_000, bodyBudget: budget)
        _ = first.read(.head(head(["Host": "a"])))
        _ = second.read(.head(head(["Host": "a"])))
        #expect(first.read(.body(ByteBuffer(repeating: 1, count: 800))) == .none)
        #expect(budget.inUse == 800)
        // The second upload would take the total past the budget: 503, and its bytes go back.
        #expect(second.read(.body(ByteBuffer(repeating: 1, count: 100))) == .none)
        #expect(rejection(second.read(.body(ByteBuffer(repeating: 1, count: 200)))) == 503)
        #expect(budget.inUse == 800)
        #expect(second.closesAfterResponse)
        // The rest of the refused body is dropped, without counting.
        #expect(second.read(.body(ByteBuffer(repeating: 1, count: 200))) == .none)
        #expect(budget.inUse == 800)
        // A complete request keeps its share until the server takes it up (it may be held
        // back behind answers its client is not reading), then returns it.
        guard case .process = first.read(.end(nil)) else {
            Issue.record("expected the request to be processed")
            return
        }
        #expect(budget.inUse == 800)
        first.releaseBody()
        #expect(budget.inUse == 0)
    }

    @Test func aConnectionGoingAwayGivesItsShareBack() {
        let budget = RequestBodyBudget(limit: 1000)
        var connection = HTTPConnection(maxBodyBytes: 10_000, bodyBudget: budget)
        _ = connection.read(.head(head(["Host": "a"])))
        _ = connection.read(.body(ByteBuffer(repeating: 1, count: 600)))
        #expect(budget.inUse == 600)
        connection.releaseBody()
        connection.releaseBody()
        #expect(budget.inUse == 0)
    }

    @Test func theConnectionCapCountsAndRefuses() {
        let cap = ConnectionCap(limit: 2)
        #expect(cap.admit())
        #expect(cap.admit())
        #expect(!cap.admit())
        #expect(cap.refused == 1)
        cap.release()
        #expect(cap.admit())
        #expect(cap.open == 2)
    }
}
