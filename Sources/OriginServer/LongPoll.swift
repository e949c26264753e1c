import DurableStreams
import NIOCore
import NIOHTTP1
import ServerSupport
import StreamStore

extension StreamService {
    /// `live=long-poll` (§5.7): answer at once when there is data or the stream is closed at the
    /// reader's offset; otherwise wait for the store to report a change, up to the timeout, and
    /// answer 204 with a fresh cursor if nothing came.
    func longPoll(_ path: String, _ read: StreamOperation.Read, live: LiveRequest, loop: any EventLoop) -> EventLoopFuture<ServerReply> {
        let promise = loop.makePromise(of: ServerReply.self)
        let deadline = NIODeadline.now() + configuration.longPollTimeout
        metrics.liveReaderStarted(path, .longPoll)
        promise.futureResult.whenComplete { [metrics] _ in metrics.liveReaderEnded(path, .longPoll) }

        func timedOut(at offset: StreamOffset, closed: Bool) -> ServerReply {
            var extra: [(String, String)] = [(HeaderName.nextOffset, offset.description), (HeaderName.upToDate, "true")]
            if closed {
                extra.append((HeaderName.closed, "true"))
                // The end of a closed stream never changes, so caches may keep it (§4.1).
                extra.append(("Cache-Control", ResponseHeaders.cacheable))
            } else {
                extra.append((HeaderName.cursor, String(cursor(after: read.mode.cursor))))
                extra.append(("Cache-Control", ResponseHeaders.noStore))
            }
            return .response(ResponseHeaders.head(.noContent, extra), body: [])
        }

        func attempt(from start: ReadStart, touch: Bool) {
            store.read(path, from: start, maxBytes: configuration.maxChunkBytes, touch: touch, on: loop)
                .assumeIsolated().whenComplete { result in
                    switch result {
                    case .failure(let error):
                        promise.fail(error)
                    case .success(let result) where result.end > result.start:
                        promise.succeed(self.readReply(result, read: read, cursor: self.cursor(after: read.mode.cursor)))
                    case .success(let result) where result.info.closed || live.isCancelled || NIODeadline.now() >= deadline:
                        promise.succeed(timedOut(at: result.end, closed: result.info.closed))
                    case .success(let result):
                        wait(at: result.end)
                    }
                }
        }

        func wait(at offset: StreamOffset) {
            let wait = store.waitForChange(path, after: offset, on: loop)
            let timer = loop.scheduleTask(deadline: deadline) { [store] in store.cancel(wait) }
            live.onCancel { [store] in store.cancel(wait) }
            wait.future.assumeIsolated().whenSuccess { outcome in
                timer.cancel()
                if outcome == .changed && !live.isCancelled {
                    attempt(from: .offset(offset), touch: false)
                } else {
                    promise.succeed(timedOut(at: offset, closed: false))
                }
            }
        }

        attempt(from: read.start, touch: true)
        return promise.futureResult
    }
}
