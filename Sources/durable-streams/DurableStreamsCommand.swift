import ArgumentParser

@main
struct DurableStreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "durable-streams",
        abstract: "Durable Streams: an origin server for append-only HTTP streams, and the tools around it.",
        subcommands: [OriginCommand.self, DevCommand.self]
    )
}
