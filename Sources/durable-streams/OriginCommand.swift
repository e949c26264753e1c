import ArgumentParser
import Foundation
import NIOCore
import OriginServer
import ServerSupport
import StreamStore
import Subscriptions

/// `durable-streams origin`: a Durable Streams server.
struct OriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Run a Durable Streams origin server (in memory, or durable with --data-dir).",
        discussion: "Settings come from --config (TOML, see origin/origin.conf); flags override the file."
    )

    @Option(help: "A TOML configuration file, e.g. origin/origin.conf.")
    var config: String?

    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default 4437; 0 picks a free port).")
    var port: Int?

    @Option(help: "How long a long-poll waits for data, e.g. 30s (default 30s).")
    var longPollTimeout: String?

    @Option(help: "How often SSE connections are closed so caches can re-collapse readers (default 60s).")
    var sseReconnectInterval: String?

    @Option(help: "Length of a cursor interval (default 20s).")
    var cursorInterval: String?

    @Option(help: "Most bytes one read returns (default 4194304).")
    var maxChunkBytes: Int?

    @Option(help: "Largest request body accepted; larger ones get 413 (default 67108864).")
    var maxBodyBytes: Int?

    @Option(help: "gzip/deflate responses for clients that accept it: on or off (default on).")
    var compression: Toggle?

    @Option(help: "Scheme and host clients reach the streams at, e.g. https://streams.example.com, for the URLs subscriptions hand out (default: from each request).")
    var publicURL: String?

    @Option(help: "Subscriptions under <prefix>__ds/: on or off (default on).")
    var subscriptions: Toggle?

    @Flag(help: "With --data-dir: retire the webhook signing key and make a new one before starting (the old one stays published for a day).")
    var rotateWebhookKey = false

    @OptionGroup var storage: StorageOptions

    enum Toggle: String, ExpressibleByArgument {
        case on, off
    }

    func run() async throws {
        // Thousands of long-poll and SSE clients each hold a descriptor.
        FileDescriptorLimit.raise()
        // Until the reload handler is in place, a SIGHUP must not end the process.
        signal(SIGHUP, SIG_IGN)
        var (configuration, storeOptions) = try resolve()
        let store = try storeOptions.map(StorageOptions.open)
        if rotateWebhookKey {
            guard let storeOptions else { throw ValidationError("--rotate-webhook-key needs --data-dir: without it the key lives only in memory") }
            try SubscriptionKeys.rotate(directory: storeOptions.directory + "/subscriptions")
        }
        configuration.subscriptionKeys = try storeOptions.map { try StorageOptions.subscriptionKeys($0) }
        configuration.subscriptionDirectory = storeOptions.map { $0.directory + "/subscriptions" }
        let server = OriginServer(configuration: configuration, store: store)
        try await server.start()
        print("durable-streams origin listening on \(server.baseURL!) (streams under \(configuration.streamPathPrefix), metrics at /metrics)")
        if !configuration.auth.isEnabled && !Self.isLoopback(configuration.host) {
            FileHandle.standardError.write(Data((
                "warning: authentication is off and the origin listens on \(configuration.host): anyone who can reach it "
                    + "can create, append to and delete any stream. Set api_keys_file, a jwt_* key file or forward_auth_url in the "
                    + "configuration (see README, Authentication), or listen on 127.0.0.1.\n").utf8))
        }
        print("Stop with Ctrl-C (SIGINT) or SIGTERM; SIGHUP reloads the authentication settings and the TLS certificate.")
        let started = config.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        Signals.onHangup { [config] in
            Reload.run(
                server: "origin", path: config, started: started,
                settings: { file in
                    var configuration = OriginConfiguration()
                    try configuration.apply(file)
                    return Reload.Settings(auth: configuration.auth, tls: configuration.tls)
                },
                reloadTLS: { try server.reloadTLS($0) },
                reloadAuth: { try await server.reloadAuth($0.auth) })
        }
        await Signals.waitForTermination()
        print("shutting down…")
        try await server.shutdown()
    }

    /// Defaults, then the file, then flags; and the file store's options when storage is durable.
    func resolve() throws -> (OriginConfiguration, FileStoreOptions?) {
        var configuration = OriginConfiguration()
        var file: ConfigurationFile?
        if let config {
            file = try ConfigurationFile(path: config)
            try configuration.apply(file!)
        }
        let storeOptions = try storage.resolve(file: file)
        if let host { configuration.host = host }
        if let port {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
            configuration.port = port
        }
        if let value = longPollTimeout { configuration.longPollTimeout = try Self.duration(value, "--long-poll-timeout") }
        if let value = sseReconnectInterval { configuration.sseReconnectInterval = try Self.duration(value, "--sse-reconnect-interval") }
        if let value = cursorInterval {
            let amount = try Self.duration(value, "--cursor-interval")
            guard amount.nanoseconds >= 1_000_000_000 else { throw ValidationError("--cursor-interval must be at least 1s") }
            configuration.cursorIntervalSeconds = Double(amount.nanoseconds) / 1e9
        }
        if let maxChunkBytes {
            guard maxChunkBytes > 0 else { throw ValidationError("--max-chunk-bytes must be positive") }
            configuration.maxChunkBytes = maxChunkBytes
        }
        if let maxBodyBytes {
            guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
            configuration.maxBodyBytes = maxBodyBytes
        }
        if let compression { configuration.compression = compression == .on }
        if let subscriptions { configuration.subscriptions = subscriptions == .on }
        if let publicURL {
            guard publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://") else {
                throw ValidationError("--public-url must be an http:// or https:// URL")
            }
            configuration.publicURL = publicURL
        }
        return (configuration, storeOptions)
    }

    /// Whether `host` is reachable from this machine only.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    static func duration(_ text: String, _ flag: String) throws -> TimeAmount {
        guard let amount = DurationText.parse(text) else {
            throw ValidationError("\(flag) must be a duration like 30s, 500ms or 2m, not '\(text)'")
        }
        return amount
    }
}
