import Crypto
import Foundation

/// The secrets behind subscriptions: the Ed25519 key that signs webhooks and the HMAC secret
/// behind callback and claim tokens. Random per process unless kept in a directory, where they
/// survive restarts so the published `kid` and every outstanding token stay valid (§6.5).
public struct SubscriptionKeys: Sendable {
    public var signer: WebhookSigner
    public var tokenSecret: [UInt8]

    public init(signer: WebhookSigner, tokenSecret: [UInt8]) {
        self.signer = signer
        self.tokenSecret = tokenSecret
    }

    public static func random() -> SubscriptionKeys {
        SubscriptionKeys(signer: WebhookSigner(keys: [.init(Curve25519.Signing.PrivateKey())]),
                         tokenSecret: (0..<32).map { _ in UInt8.random(in: .min ... .max) })
    }

    static let signingKeyFile = "webhook-signing.key"
    static let tokenSecretFile = "callback-token.secret"

    /// Loads the keys kept in `directory`, making and keeping new ones where there are none.
    /// Blocking file I/O: called once at startup, before anything is served. Files are written
    /// to a temporary name, synced and renamed, so a crash leaves the old file or the new one,
    /// and are readable by the owner only.
    public static func load(directory: String, now: Date = Date()) throws -> SubscriptionKeys {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let signing = try loadOrCreate(directory + "/" + signingKeyFile) { Curve25519.Signing.PrivateKey().rawRepresentation }
        let secret = try loadOrCreate(directory + "/" + tokenSecretFile) { Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }) }
        guard secret.count == 32 else { throw KeyFileError(path: directory + "/" + tokenSecretFile) }
        var keys = [WebhookSigner.Key(try privateKey(signing, path: directory + "/" + signingKeyFile))]
        // Retired keys still inside the window stay published (newest first), so webhooks they
        // signed just before a rotation still verify; older ones are removed.
        let retired = (try FileManager.default.contentsOfDirectory(atPath: directory)).compactMap { name -> (Int64, String)? in
            guard name.hasPrefix(retiredPrefix), name.hasSuffix(".key"),
                let seconds = Int64(name.dropFirst(retiredPrefix.count).dropLast(4)) else { return nil }
            return (seconds, name)
        }.sorted { $0.0 > $1.0 }
        for (seconds, name) in retired {
            let path = directory + "/" + name
            if Double(seconds) + retiredKeyWindow < now.timeIntervalSince1970 {
                try? FileManager.default.removeItem(atPath: path)
            } else if let data = FileManager.default.contents(atPath: path) {
                keys.append(WebhookSigner.Key(try privateKey(data, path: path)))
            }
        }
        return SubscriptionKeys(signer: WebhookSigner(keys: keys), tokenSecret: Array(secret))
    }

    /// How long a retired signing key stays published: far past any receiver's replay window
    /// (five minutes is usual), so every delivery it signed can still be verified.
    public static let retiredKeyWindow: TimeInterval = 24 * 3600
    static let retiredPrefix = "webhook-signing.retired-"

    /// Retires the current signing key (kept and published for `retiredKeyWindow`); the next
    /// `load` makes a new one, which then signs. Blocking: for startup (`--rotate-webhook-key`).
    public static func rotate(directory: String, now: Date = Date()) throws {
        let current = directory + "/" + signingKeyFile
        guard FileManager.default.fileExists(atPath: current) else { return }
        let retired = directory + "/" + retiredPrefix + String(Int64(now.timeIntervalSince1970)) + ".key"
        guard rename(current, retired) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: retired]) }
    }

    private static func privateKey(_ data: Data, path: String) throws -> Curve25519.Signing.PrivateKey {
        do {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: data)
        } catch {
            throw KeyFileError(path: path)
        }
    }

    public struct KeyFileError: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "\(path) does not hold a key of the expected size; move it away to make a new one" }
    }

    private static func loadOrCreate(_ path: String, make: () -> Data) throws -> Data {
        if let existing = FileManager.default.contents(atPath: path) { return existing }
        let data = make()
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary]) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        // The directory entry too, so the rename itself survives a crash.
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
        return data
    }
}
