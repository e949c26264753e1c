import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport

extension Fuzz {
    /// The body limit of the state machine under test: small, so inputs reach it.
    static let stateMachineMaxBody = 100

    /// The per-connection request state machine, driven by any order of decoder events: no
    /// request is handed over with more than the body limit, with other bytes than were
    /// received, or after the connection was refused.
    ///
    /// Input: one event per byte (low two bits: head, body part, end, response written); a head
    /// takes its `Content-Length` from the next byte, a body part its length.
    public static func requestStateMachine(_ input: UnsafeRawBufferPointer) {
        var machine = RequestStateMachine(maxBodyBytes: stateMachineMaxBody)
        var bytes = input.makeIterator()
        var received: [UInt8] = []
        var refused = false
        var serial: UInt8 = 0
        while let event = bytes.next() {
            let action: RequestStateMachine.Action
            switch event & 3 {
            case 0:
                var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/stream/s")
                let length = bytes.next() ?? 0
                switch event >> 2 & 3 {
                case 0: break
                case 1: head.headers.add(name: "Content-Length", value: String(length))
                case 2: head.headers.add(name: "Content-Length", value: "\(length)000000000000000000")
                default: head.headers.add(name: "Content-Length", value: "-\(length)")
                }
                received = []
                action = machine.receivedHead(head)
            case 1:
                let length = Int(bytes.next() ?? 0) % (stateMachineMaxBody / 2)
                let part = [UInt8](repeating: serial, count: length)
                serial &+= 1
                received += part
                action = machine.receivedBody(ByteBuffer(bytes: part))
            case 2:
                action = machine.receivedEnd()
            default:
                machine.responseCompleted()
                action = .none
            }
            switch action {
            case .none:
                break
            case .process(_, let body):
                check(!refused, "a request handed over after the connection was refused")
                check(body.readableBytes <= stateMachineMaxBody, "body over the limit handed over")
                check(Array(body.readableBytesView) == received, "body handed over is not what was received")
            case .rejectAndClose(let error):
                check(error.status == .badRequest || error.status == .payloadTooLarge, "refused with \(error)")
                refused = true
            }
            if refused {
                guard case .discarding = machine.state else { preconditionFailure("refused connection left state \(machine.state)") }
            }
        }
    }
}
