import Foundation
import NIOCore
import NIOPosix
import Subscriptions
import Testing

@Suite("Subscriptions: the state journal")
struct SubscriptionJournalTests {
    /// Saves arriving out of order (as concurrent requests hand them in) never leave an older
    /// state on disk, and every save's future completes.
    @Test func theNewestStateWinsAndEverySaveIsAnswered() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = SubscriptionJournal(directory: directory)
        #expect(try journal.load() == nil)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let order: [UInt64] = [3, 1, 7, 2, 5, 6, 4, 10, 8, 9]
        let saves = order.map { journal.save(Array("state \($0)".utf8), sequence: $0, on: loop) }
        for save in saves { try await save.get() }
        #expect(try journal.load() == Array("state 10".utf8))
        // An older state after a newer one was written changes nothing.
        try await journal.save(Array("state 2".utf8), sequence: 2, on: loop).get()
        #expect(try journal.load() == Array("state 10".utf8))
        try await journal.save(Array("state 11".utf8), sequence: 11, on: loop).get()
        #expect(try journal.load() == Array("state 11".utf8))
        #expect(!FileManager.default.fileExists(atPath: directory + "/state.json.tmp"))
    }

    @Test func aFailedWriteFailsItsSaveAndLaterSavesStillWork() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = SubscriptionJournal(directory: directory)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // The directory does not exist yet: the write fails.
        await #expect(throws: (any Error).self) { try await journal.save([1], sequence: 1, on: loop).get() }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await journal.save([2], sequence: 1, on: loop).get()
        try await journal.save([3], sequence: 2, on: loop).get()
        #expect(try journal.load() == [3])
    }
}
