import NIOCore
import NIOHTTP1

/// Carries out `PipeliningStateMachine` between the request decoder and the handlers that answer:
/// they see one request at a time, and the next one once they announce the current response
/// written (`ResponseWritten`). A decoding failure is passed on in its turn as an error.
public final class HTTPPipeliningHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    private var machine = PipeliningStateMachine()
    /// Inside the release loop: a response written by a released request (answered at once)
    /// is taken up by the loop, so that held parts still leave in order.
    private var releasing = false
    private var writtenWhileReleasing = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let inbound = machine.received(.part(unwrapInboundIn(data))) {
            deliver(inbound, context: context)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let failure = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if let inbound = machine.received(.failure(failure)) {
            deliver(inbound, context: context)
        }
    }

    public func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is ResponseWritten else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        guard !releasing else {
            writtenWhileReleasing = true
            return
        }
        releasing = true
        repeat {
            writtenWhileReleasing = false
            let (release, read) = machine.responseWritten()
            for inbound in release { deliver(inbound, context: context) }
            if read { context.read() }
        } while writtenWhileReleasing
        releasing = false
    }

    private func deliver(_ inbound: PipeliningStateMachine.Inbound, context: ChannelHandlerContext) {
        switch inbound {
        case .part(let part): context.fireChannelRead(wrapInboundOut(part))
        case .failure(let error): context.fireErrorCaught(error)
        }
    }
}
