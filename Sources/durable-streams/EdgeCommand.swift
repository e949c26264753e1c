import ArgumentParser
import EdgeNode
import Foundation
import ServerSupport
import StreamAuth

/// `durable-streams edge`: a caching, collapsing, fan-out node in front of an upstream.
struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Run a Durable Streams edge node in front of an origin (or another edge).",
        discussion: "Settings come from --config (TOML, see edge.conf); --listen and --upstream override the file."
    )

    @Option(help: "A TOML configuration file, e.g. edge.conf.")
    var config: String?

    @Option(help: "Where to listen, HOST:PORT (default 127.0.0.1:4438).")
    var listen: String?

    @Option(help: "The upstream origin or edge, http://HOST:PORT or https://HOST:PORT (default http://127.0.0.1:4437).")
    var upstream: String?

    @Flag(help: "Keep the X-Forwarded-Host and X-Forwarded-Proto the client sends: only for an inner tier whose clients are other edges.")
    var trustForwardedHost = false

    func run() async throws {
        // Thousands of long-poll and SSE clients each hold a descriptor.
        FileDescriptorLimit.raise()
        // Until the reload handler is in place, a SIGHUP must not end the process.
        signal(SIGHUP, SIG_IGN)
        let configuration = try resolve()
        let edge = EdgeServer(configuration: configuration)
        try await edge.start()
        print("durable-streams edge listening on \(edge.baseURL!) in front of \(configuration.upstreamURL)")
        print("Dashboard: \(edge.baseURL!)\(configuration.dashboardPath)  Metrics: \(edge.baseURL!)\(configuration.metricsPath)")
        print("Stop with Ctrl-C (SIGINT) or SIGTERM; SIGHUP reloads the TLS certificate and, with credentials = verify, the authentication settings.")
        let started = config.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        // Only a verifying edge has keys of its own; the others pass credentials on.
        var reloadAuth: (@Sendable (Reload.Settings) async throws -> Void)?
        if configuration.credentials == .verify {
            reloadAuth = { @Sendable settings in
                try await edge.reloadAuth(settings.auth, upstreamAuthorizationFile: settings.upstreamAuthorizationFile)
            }
        }
        let verifyingReload = reloadAuth
        Signals.onHangup { [config] in
            Reload.run(
                server: "edge", path: config, started: started,
                settings: { file in
                    var reloaded = EdgeConfiguration()
                    try reloaded.apply(file)
                    return Reload.Settings(
                        auth: reloaded.auth, tls: reloaded.tls, upstreamAuthorizationFile: reloaded.upstreamAuthorizationFile)
                },
                reloadTLS: { try edge.reloadTLS($0) },
                reloadAuth: verifyingReload)
        }
        await Signals.waitForTermination()
        print("shutting down…")
        try await edge.shutdown()
    }

    func resolve() throws -> EdgeConfiguration {
        var configuration = EdgeConfiguration()
        if let config { try configuration.apply(ConfigurationFile(path: config)) }
        if let listen {
            guard let (host, port) = EdgeConfiguration.parseHostPort(listen) else {
                throw ValidationError("--listen must be HOST:PORT, not '\(listen)'")
            }
            configuration.host = host
            configuration.port = port
        }
        if let upstream {
            guard let (secure, host, port) = EdgeConfiguration.parseUpstreamURL(upstream) else {
                throw ValidationError("--upstream must be http://HOST:PORT or https://HOST:PORT, not '\(upstream)'")
            }
            configuration.upstreamHost = host
            configuration.upstreamPort = port
            // The file's TLS settings (CA file, server name) stay when the scheme does.
            if !secure { configuration.upstreamTLS = nil } else if configuration.upstreamTLS == nil {
                configuration.upstreamTLS = UpstreamTLSSettings()
            }
        }
        if trustForwardedHost { configuration.trustForwardedHost = true }
        return configuration
    }
}
