import NIOCore
import NIOHTTP1
import ServerSupport
import Testing

@Suite("RequestStateMachine")
struct RequestStateMachineTests {
    func head(_ headers: HTTPHeaders = [:]) -> HTTPRequestHead {
        var headers = headers
        if !headers.contains(name: "Host") { headers.add(name: "Host", value: "example") }
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/stream/x", headers: headers)
    }

    @Test func collectsBodyAndProcessesAtEnd() {
        var machine = RequestStateMachine(maxBodyBytes: 100)
        #expect(machine.receivedHead(head()) == .none)
        #expect(machine.receivedBody(ByteBuffer(string: "ab")) == .none)
        #expect(machine.receivedBody(ByteBuffer(string: "cd")) == .none)
        #expect(machine.receivedEnd() == .process(head(), ByteBuffer(string: "abcd")))
        machine.responseCompleted()
        #expect(machine.receivedHead(head()) == .none)
    }

    @Test func declaredOversizeIsRejectedAtTheHead() {
        var machine = RequestStateMachine(maxBodyBytes: 10)
        guard case .rejectAndClose(let error) = machine.receivedHead(head(["Content-Length": "11"])) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(error.status == .payloadTooLarge)
        #expect(machine.receivedBody(ByteBuffer(string: "x")) == .none)
        #expect(machine.receivedEnd() == .none)
    }

    @Test func streamedOversizeIsRejectedWhenItCrossesTheLimit() {
        var machine = RequestStateMachine(maxBodyBytes: 5)
        _ = machine.receivedHead(head())
        #expect(machine.receivedBody(ByteBuffer(string: "12345")) == .none)
        guard case .rejectAndClose(let error) = machine.receivedBody(ByteBuffer(string: "6")) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(error.status == .payloadTooLarge)
    }

    @Test func bodyWithoutHeadIsAProtocolViolation() {
        var machine = RequestStateMachine(maxBodyBytes: 5)
        guard case .rejectAndClose(let error) = machine.receivedBody(ByteBuffer(string: "x")) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(error.status == .badRequest)
    }
}
