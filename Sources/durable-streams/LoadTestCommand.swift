import ArgumentParser
import Foundation
import LoadTest
import NIOCore
import NIOPosix
import ServerSupport

/// `durable-streams loadtest`: drives thousands of readers against an origin or an edge and
/// reports what they actually received.
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Measure fan-out: readers tail streams through a target while writers append to the origin.",
        discussion: """
            SCENARIO is a built-in name (live, sse, catchup, mixed) or a scenario file (TOML, see loadtest/*.conf). \
            Options given here override the scenario's. Exits 1 when any reader lost, duplicated or reordered a message.
            """
    )

    @Argument(help: "A built-in scenario (live, sse, catchup, mixed) or a scenario file.")
    var scenario: String

    @Option(help: "Where the readers go: the origin or an edge, http://HOST:PORT.")
    var target = "http://127.0.0.1:4438"

    @Option(help: "Where the writers go and whose /metrics give the origin figures (default: the target).")
    var origin: String?

    @Option(help: "Run the same scenario against this target too and print the ratios (repeatable).")
    var compare: [String] = []

    @Option(help: "Scrape this edge's /metrics (repeatable; default: the target, when it is not the origin).")
    var edgeMetrics: [String] = []

    @Option(help: "Streams (overrides the scenario).")
    var streams: Int?

    @Option(help: "Readers per stream (overrides the scenario).")
    var readers: Int?

    @Option(help: "Appends per second per stream (overrides the scenario).")
    var rate: Double?

    @Option(help: "How long the writers write, e.g. 30s (overrides the scenario).")
    var duration: String?

    @Option(help: "Bytes per message (overrides the scenario).")
    var messageBytes: Int?

    @Option(help: "Write every figure as JSON to this file.")
    var json: String?

    @Option(help: "Write a self-contained HTML report with charts to this file.")
    var html: String?

    @Flag(help: "Allow targets that are not loopback addresses.")
    var allowRemote = false

    @Flag(help: "No progress line.")
    var quiet = false

    func run() async throws {
        let descriptors = FileDescriptorLimit.raise()
        let scenario = try resolveScenario()
        let totalConnections = scenario.totalReaders + scenario.streams * scenario.writersPerStream + 16
        if descriptors < UInt64(totalConnections) {
            throw ValidationError("\(totalConnections) connections need more descriptors than the limit of \(descriptors); raise `ulimit -n`")
        }
        let targets = try ([target] + compare).map(parseTarget)
        let originTarget = try origin.map(parseTarget) ?? targets[0]
        let explicitEdges = try edgeMetrics.map(parseTarget)

        // The servers' own loops are not shared with the clients: a run measures them, not us.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let results: [LoadTestResult]
        do {
            results = try await runAll(scenario: scenario, targets: targets, origin: originTarget, edges: explicitEdges, group: group)
            try await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try report(results)
    }

    private func runAll(scenario: Scenario, targets: [Target], origin originTarget: Target, edges explicitEdges: [Target], group: EventLoopGroup) async throws -> [LoadTestResult] {
        let showProgress = !quiet && isatty(STDERR_FILENO) == 1
        var results: [LoadTestResult] = []
        for readerTarget in targets {
            var options = LoadTestOptions(scenario: scenario, target: readerTarget, origin: originTarget)
            options.allowRemote = allowRemote
            // Explicit edge lists apply to the first target; compared targets scrape themselves.
            if !explicitEdges.isEmpty, readerTarget == targets[0] { options.edgeMetrics = explicitEdges }
            FileHandle.standardError.write(Data("\(scenario.name): \(scenario.totalReaders) \(scenario.kind.rawValue) readers → \(readerTarget)\n".utf8))
            let result = try await LoadTestRunner(options: options, group: group).run { progress in
                guard showProgress else { return }
                let line = String(
                    format: "\r[%6.1fs] %@  conns %6d  msgs/s %8.0f  p99 %8.2f ms  errors %d   ",
                    progress.elapsedSeconds, progress.phase.padding(toLength: 10, withPad: " ", startingAt: 0),
                    progress.connections, progress.messagesPerSecond, progress.p99Millis, progress.errors)
                FileHandle.standardError.write(Data(line.utf8))
            }
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            print(TextReport.render(result))
            results.append(result)
        }
        return results
    }

    private func report(_ results: [LoadTestResult]) throws {
        if results.count > 1 { print(TextReport.renderComparison(results)) }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = results.count == 1 ? try encoder.encode(results[0]) : try encoder.encode(results)
            try data.write(to: URL(fileURLWithPath: json))
        }
        if let html {
            try Data(HTMLReport.render(results).utf8).write(to: URL(fileURLWithPath: html))
        }
        if !results.allSatisfy(\.deliveryIsClean) { throw ExitCode(1) }
    }

    private func resolveScenario() throws -> Scenario {
        var scenario: Scenario
        if let builtIn = Scenario.builtIn(self.scenario) {
            scenario = builtIn
        } else if FileManager.default.fileExists(atPath: self.scenario) {
            scenario = try Scenario(file: ConfigurationFile(path: self.scenario))
        } else {
            throw ValidationError("'\(self.scenario)' is neither a built-in scenario (live, sse, catchup, mixed) nor a file")
        }
        if let streams { scenario.streams = streams }
        if let readers { scenario.readersPerStream = readers }
        if let rate { scenario.appendsPerSecond = rate }
        if let messageBytes { scenario.messageBytes = messageBytes }
        if let duration {
            guard let amount = DurationText.parse(duration) else { throw ValidationError("--duration must look like 30s, 500ms or 2m") }
            scenario.duration = amount
        }
        try scenario.validate()
        return scenario
    }

    private func parseTarget(_ url: String) throws -> Target {
        guard let target = Target(url: url) else { throw ValidationError("'\(url)' is not an http://HOST:PORT URL") }
        return target
    }
}
