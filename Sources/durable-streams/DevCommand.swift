import ArgumentParser
import OriginServer

/// `durable-streams dev`: everything a newcomer needs, with no configuration.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run an in-memory origin on 127.0.0.1:4437 with no configuration."
    )

    @Option(help: "Port for the origin.")
    var port = 4437

    func run() async throws {
        var configuration = OriginConfiguration()
        configuration.port = port
        let server = OriginServer(configuration: configuration)
        try await server.start()
        let base = server.baseURL!
        print("""
            durable-streams dev: in-memory origin at \(base)

              curl -X PUT -H 'Content-Type: text/plain' \(base)/v1/stream/hello
              curl -X POST -H 'Content-Type: text/plain' --data 'hi there' \(base)/v1/stream/hello
              curl '\(base)/v1/stream/hello?offset=-1'
              curl -N '\(base)/v1/stream/hello?offset=-1&live=sse'

            Metrics: \(base)/metrics. Stop with Ctrl-C.
            """)
        await Signals.waitForTermination()
        print("shutting down…")
        try await server.shutdown()
    }
}
