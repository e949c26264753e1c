import Foundation
import ServerSupport
import StreamAuth

/// What `SIGHUP` does: reads the configuration file again and puts the authentication settings
/// (API keys, JWT keys, issuer, audience, metrics scope) in force without a restart. Any other
/// setting that changed is named as needing a restart; a file that cannot be read or loaded
/// changes nothing.
enum Reload {
    /// - Parameters:
    ///   - started: the file's text as it was at start.
    ///   - apply: puts the new authentication settings in force (loading their key files).
    static func run(
        server: String, path: String?, started: String?, settings: (ConfigurationFile) throws -> AuthSettings,
        apply: @escaping @Sendable (AuthSettings) async throws -> Void
    ) {
        guard let path else {
            log("\(server): SIGHUP received, but there is no --config file to read again")
            return
        }
        let file: ConfigurationFile
        let auth: AuthSettings
        do {
            file = try ConfigurationFile(path: path)
            auth = try settings(file)
        } catch {
            log("\(server): reload of \(path) failed, nothing changed: \(error)")
            return
        }
        let before = started.flatMap { try? ConfigurationFile(text: $0, path: path) }
        let needRestart = before.map { file.changedKeys(from: $0) }?.filter { !AuthSettings.fileKeys.contains($0) } ?? []
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await apply(auth)
                var line = "\(server): reloaded \(path): authentication \(auth.isEnabled ? "on" : "off")"
                if !needRestart.isEmpty { line += "; needs a restart to change: \(needRestart.joined(separator: ", "))" }
                log(line)
            } catch {
                log("\(server): reload of \(path) failed, nothing changed: \(error)")
            }
            done.signal()
        }
        done.wait()
    }

    private static func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
