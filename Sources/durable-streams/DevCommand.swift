import ArgumentParser
import EdgeNode
import OriginServer
import ServerSupport
import StreamStore

/// `durable-streams dev`: everything a newcomer needs, with no configuration: an in-memory
/// origin and an edge in front of it, in one process.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run an origin on 127.0.0.1:4437 (in memory unless --data-dir) and an edge in front of it on 127.0.0.1:4438."
    )

    @Option(help: "Port for the origin.")
    var port = 4437

    @Option(help: "Port for the edge.")
    var edgePort = 4438

    @OptionGroup var storage: StorageOptions

    func run() async throws {
        // Thousands of long-poll and SSE clients each hold a descriptor.
        let descriptors = FileDescriptorLimit.raise()
        // Both servers share this process's descriptors: each gets half, so neither can lock
        // the other out (and the edge's upstream connections are origin clients too).
        let share = ConnectionLimits().effectiveMaxConnections(descriptorLimit: descriptors / 2)
        var originConfiguration = OriginConfiguration()
        originConfiguration.port = port
        originConfiguration.limits.maxConnections = share
        let storeOptions = try storage.resolve(file: nil)
        let store = try storeOptions.map(StorageOptions.open)
        originConfiguration.subscriptionKeys = try storeOptions.map { try StorageOptions.subscriptionKeys($0) }
        originConfiguration.subscriptionDirectory = storeOptions.map { $0.directory + "/subscriptions" }
        let origin = OriginServer(configuration: originConfiguration, store: store)
        try await origin.start()
        var edgeConfiguration = EdgeConfiguration()
        edgeConfiguration.port = edgePort
        edgeConfiguration.upstreamPort = origin.port!
        edgeConfiguration.limits.maxConnections = share
        let edge = EdgeServer(configuration: edgeConfiguration)
        try await edge.start()
        let base = origin.baseURL!
        let edgeBase = edge.baseURL!
        print("""
            durable-streams dev
              origin (\(store == nil ? "in memory" : "data in \(storage.dataDir ?? "")")): \(base)
              edge in front:      \(edgeBase)   dashboard: \(edgeBase)/__edge/

              curl -X PUT -H 'Content-Type: text/plain' \(edgeBase)/v1/stream/hello
              curl -X POST -H 'Content-Type: text/plain' --data 'hi there' \(edgeBase)/v1/stream/hello
              curl -i '\(edgeBase)/v1/stream/hello?offset=-1'          # X-Cache: MISS, then HIT
              curl -N '\(edgeBase)/v1/stream/hello?offset=-1&live=sse'

            Metrics: \(base)/metrics (origin), \(edgeBase)/metrics (edge). Stop with Ctrl-C.
            """)
        await Signals.waitForTermination()
        print("shutting down…")
        try await edge.shutdown()
        try await origin.shutdown()
    }
}
