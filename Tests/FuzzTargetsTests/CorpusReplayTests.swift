import Foundation
import FuzzTargets
import Testing

/// Replays the seed corpus and every kept crash input (`Tests/FuzzCorpus/<target>/`) through
/// its fuzz target, so `make test` catches a regression without running the fuzzer. A target
/// that traps kills the test process, which fails the run.
@Suite("Fuzz corpus replay")
struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    static func inputs(_ target: FuzzTarget) throws -> [URL] {
        let folder = corpus.appendingPathComponent(target.rawValue)
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test(arguments: FuzzTarget.allCases)
    func replaysCorpus(_ target: FuzzTarget) throws {
        let files = try Self.inputs(target)
        #expect(!files.isEmpty, "Tests/FuzzCorpus/\(target.rawValue)/ has no seeds")
        for file in files {
            target.run(Array(try Data(contentsOf: file)))
        }
    }

    @Test func everyCorpusFolderNamesATarget() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == Set(FuzzTarget.allCases.map(\.rawValue)))
    }

    /// The targets must hold their invariants on inputs nobody wrote down, too: a quick sweep of
    /// short random inputs (deterministic), cheap enough for every test run.
    @Test(arguments: FuzzTarget.allCases)
    func survivesRandomShortInputs(_ target: FuzzTarget) {
        var generator = SplitMix(state: 0x5eed ^ UInt64(target.rawValue.utf8.count))  // the same sweep on every run
        let alphabet = Array("0123456789-_./%:;,\"*=&?[]{}\\ \t\r\nWabcfnrtuz+ZT".utf8)
        for _ in 0..<500 {
            let length = Int(generator.next() % 48)
            let input = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            target.run(input)
        }
    }
}
