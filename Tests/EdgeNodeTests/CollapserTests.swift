import EdgeNode
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@Suite("Collapser: single-flight")
struct CollapserTests {
    @Test func concurrentJoinsShareOneCall() throws {
        let loop = EmbeddedEventLoop()
        let collapser = Collapser<String, Int>()
        let upstream = loop.makePromise(of: Int.self)
        var starts = 0
        let joins = (0..<100).map { _ in
            collapser.join("k", on: loop) {
                starts += 1
                return .init(result: upstream.futureResult, cancel: {})
            }
        }
        #expect(starts == 1)
        #expect(joins.filter(\.isLeader).count == 1)
        #expect(collapser.waiters(for: "k") == 100)
        upstream.succeed(7)
        for join in joins { #expect(try join.future.wait() == 7) }
        #expect(collapser.inFlight == 0)
    }

    @Test func aLeavingWaiterDoesNotCancelForOthers() throws {
        let loop = EmbeddedEventLoop()
        let collapser = Collapser<String, Int>()
        let upstream = loop.makePromise(of: Int.self)
        let cancels = NIOLockedValueBox(0)
        let start = { Collapser<String, Int>.Call(result: upstream.futureResult, cancel: { cancels.withLockedValue { $0 += 1 } }) }
        let leader = collapser.join("k", on: loop, start: start)
        let follower = collapser.join("k", on: loop, start: start)
        collapser.leave(leader.ticket)
        #expect(cancels.withLockedValue { $0 } == 0)
        #expect(throws: CancellationError.self) { try leader.future.wait() }
        upstream.succeed(1)
        #expect(try follower.future.wait() == 1)
    }

    @Test func theLastWaiterLeavingCancelsTheCall() {
        let loop = EmbeddedEventLoop()
        let collapser = Collapser<String, Int>()
        let upstream = loop.makePromise(of: Int.self)
        let cancels = NIOLockedValueBox(0)
        let start = { Collapser<String, Int>.Call(result: upstream.futureResult, cancel: { cancels.withLockedValue { $0 += 1 } }) }
        let a = collapser.join("k", on: loop, start: start)
        let b = collapser.join("k", on: loop, start: start)
        collapser.leave(a.ticket)
        collapser.leave(b.ticket)
        #expect(cancels.withLockedValue { $0 } == 1)
        #expect(collapser.inFlight == 0)
        upstream.fail(CancellationError())
        // A new join after that starts a fresh call.
        var started = false
        _ = collapser.join("k", on: loop) {
            started = true
            return .init(result: loop.makeSucceededFuture(2), cancel: {})
        }
        #expect(started)
    }

    @Test func failuresReachEveryWaiterAndAreNotRemembered() throws {
        struct Boom: Error {}
        let loop = EmbeddedEventLoop()
        let collapser = Collapser<String, Int>()
        let upstream = loop.makePromise(of: Int.self)
        let a = collapser.join("k", on: loop) { .init(result: upstream.futureResult, cancel: {}) }
        let b = collapser.join("k", on: loop) { .init(result: upstream.futureResult, cancel: {}) }
        upstream.fail(Boom())
        #expect(throws: Boom.self) { try a.future.wait() }
        #expect(throws: Boom.self) { try b.future.wait() }
        let again = collapser.join("k", on: loop) { .init(result: loop.makeSucceededFuture(3), cancel: {}) }
        #expect(again.isLeader)
        #expect(try again.future.wait() == 3)
    }

    @Test func differentKeysDoNotCollapse() {
        let loop = EmbeddedEventLoop()
        let collapser = Collapser<String, Int>()
        let a = collapser.join("a", on: loop) { .init(result: loop.makePromise(of: Int.self).futureResult, cancel: {}) }
        let b = collapser.join("b", on: loop) { .init(result: loop.makePromise(of: Int.self).futureResult, cancel: {}) }
        #expect(a.isLeader && b.isLeader)
        #expect(collapser.inFlight == 2)
        collapser.leave(a.ticket)
        collapser.leave(b.ticket)
    }

    /// Waiters on several event loops: each is answered on its own loop, with the flight's
    /// value, whichever loop the upstream answer arrives on.
    @Test func waitersOnEveryLoopAreAnsweredOnTheirOwnLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = [group.next(), group.next()]
        #expect(loops[0] !== loops[1])
        let collapser = Collapser<String, Int>()
        let upstream = loops[0].makePromise(of: Int.self)
        let joins = (0..<40).map { index in
            collapser.join("k", on: loops[index % 2]) { .init(result: upstream.futureResult, cancel: {}) }
        }
        let answered = joins.map { join in
            join.future.map { value in (value, join.future.eventLoop.inEventLoop) }
        }
        upstream.succeed(42)
        for (index, answer) in answered.enumerated() {
            let (value, onItsLoop) = try await answer.get()
            #expect(value == 42)
            #expect(onItsLoop)
            #expect(joins[index].future.eventLoop === loops[index % 2])
        }
        #expect(collapser.inFlight == 0)
        try await group.shutdownGracefully()
    }
}
