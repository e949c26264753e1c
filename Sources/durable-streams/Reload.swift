import Foundation
import ServerSupport
import StreamAuth

/// What `SIGHUP` does: reads the configuration file again and puts in force, without a restart,
/// the TLS certificate and key (for new connections) and the authentication settings (API keys,
/// JWT keys, issuer, audience, metrics scope; at an edge that verifies, its upstream credential). Any other setting that changed is named as
/// needing a restart; a file that cannot be read changes nothing, and a certificate or key file
/// that cannot be loaded leaves only its own part unchanged.
enum Reload {
    /// The settings a reload can change.
    struct Settings: Sendable {
        var auth: AuthSettings
        var tls: TLSSettings?
        /// An edge's credential for its upstream (with `credentials = verify`).
        var upstreamAuthorizationFile: String?
    }

    /// Keys whose new values a reload puts in force.
    static let liveKeys = AuthSettings.fileKeys.union(["tls_certificate_file", "tls_key_file", "upstream_authorization_file"])

    /// - Parameters:
    ///   - started: the file's text as it was at start.
    ///   - reloadTLS: reads the certificate and key again (first: a bad file changes nothing).
    ///   - reloadAuth: loads the key files and puts the authentication settings in force; `nil`
    ///     when this server has none to reload.
    static func run(
        server: String, path: String?, started: String?, settings: (ConfigurationFile) throws -> Settings,
        reloadTLS: @escaping @Sendable (TLSSettings?) throws -> Void,
        reloadAuth: (@Sendable (Settings) async throws -> Void)?
    ) {
        guard let path else {
            log("\(server): SIGHUP received, but there is no --config file to read again")
            return
        }
        let file: ConfigurationFile
        let new: Settings
        do {
            file = try ConfigurationFile(path: path)
            new = try settings(file)
        } catch {
            log("\(server): reload of \(path) failed, nothing changed: \(error)")
            return
        }
        let before = started.flatMap { try? ConfigurationFile(text: $0, path: path) }
        let needRestart = before.map { file.changedKeys(from: $0) }?.filter { !liveKeys.contains($0) } ?? []
        // Each part goes ahead on its own: a half-written certificate must not hold back a
        // key revocation, nor a bad key file a certificate renewal.
        var line = "\(server): reloaded \(path)"
        do {
            try reloadTLS(new.tls)
            if new.tls != nil { line += ": TLS certificate read again" }
        } catch {
            line += ": TLS unchanged, its reload failed: \(error)"
        }
        let tlsSaid = line.contains(": TLS")
        let done = DispatchSemaphore(value: 0)
        Task {
            if let reloadAuth {
                do {
                    try await reloadAuth(new)
                    line += (tlsSaid ? ", " : ": ") + "authentication \(new.auth.isEnabled ? "on" : "off")"
                } catch {
                    line += (tlsSaid ? "; " : ": ") + "authentication unchanged, its reload failed: \(error)"
                }
            }
            if !needRestart.isEmpty { line += "; needs a restart to change: \(needRestart.joined(separator: ", "))" }
            log(line)
            done.signal()
        }
        done.wait()
    }

    private static func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
