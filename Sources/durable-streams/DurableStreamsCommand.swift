import ArgumentParser

@main
struct DurableStreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "durable-streams",
        abstract: "Durable Streams: an origin server for append-only HTTP streams, an edge node that caches and fans them out, and the tools around them.",
        subcommands: [OriginCommand.self, EdgeCommand.self, LoadTestCommand.self, DevCommand.self, DashboardCommand.self]
    )
}
