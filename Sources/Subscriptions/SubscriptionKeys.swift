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
    public static func load(directory: String) throws -> SubscriptionKeys {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let signing = try loadOrCreate(directory + "/" + signingKeyFile) { Curve25519.Signing.PrivateKey().rawRepresentation }
        let secret = try loadOrCreate(directory + "/" + tokenSecretFile) { Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }) }
        guard secret.count == 32 else { throw KeyFileError(path: directory + "/" + tokenSecretFile) }
        let key: Curve25519.Signing.PrivateKey
        do {
            key = try Curve25519.Signing.PrivateKey(rawRepresentation: signing)
        } catch {
            throw KeyFileError(path: directory + "/" + signingKeyFile)
        }
        return SubscriptionKeys(signer: WebhookSigner(keys: [.init(key)]), tokenSecret: Array(secret))
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
