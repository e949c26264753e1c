import Crypto
import Foundation
import TOMLKit

/// Static API keys, each with a scope and the stream-name prefixes it covers, loaded from a
/// TOML file of `[[key]]` tables:
///
/// ```toml
/// [[key]]
/// name = "ingest"                 # for logs
/// sha256 = "9f86d081…"            # SHA-256 of the key, hex: printf %s "$KEY" | sha256sum
/// scope = "write"                 # read | write | admin
/// prefixes = ["events/"]          # optional; every stream when absent
/// ```
///
/// Only digests are kept, so the file need not hold the keys themselves (`secret = "…"` is
/// accepted too, for development). A request presents a key as `Authorization: Bearer <key>`.
public struct APIKeys: Sendable {
    private var byDigest: [String: Principal] = [:]

    public var count: Int { byDigest.count }

    public init() {}

    /// Parses the file's text; a problem names the table it is in.
    public init(toml text: String) throws(AuthConfigurationError) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch {
            throw AuthConfigurationError("API key file is not valid TOML: \(error)")
        }
        for key in table.keys where key != "key" {
            throw AuthConfigurationError("API key file: unknown top-level key '\(key)' (use [[key]] tables)")
        }
        guard let entries = table["key"]?.array else {
            throw AuthConfigurationError("API key file: no [[key]] tables")
        }
        for (index, entry) in entries.enumerated() {
            let label = "[[key]] #\(index + 1)"
            guard let fields = entry.table else { throw AuthConfigurationError("API key file: \(label) is not a table") }
            for field in fields.keys where !["name", "sha256", "secret", "scope", "prefixes", "prefix"].contains(field) {
                throw AuthConfigurationError("API key file: \(label) has an unknown field '\(field)'")
            }
            let name = fields["name"]?.string ?? "key-\(index + 1)"
            guard let scopeName = fields["scope"]?.string, let scope = AccessScope(name: scopeName) else {
                throw AuthConfigurationError("API key file: \(label) needs scope = \"read\", \"write\" or \"admin\"")
            }
            var prefixes: [String] = []
            if let single = fields["prefix"]?.string { prefixes.append(single) }
            if let list = fields["prefixes"]?.array {
                for item in list {
                    guard let prefix = item.string else { throw AuthConfigurationError("API key file: \(label) prefixes must be strings") }
                    prefixes.append(prefix)
                }
            }
            if fields["prefixes"] != nil && prefixes.isEmpty {
                // An empty list reads as "none"; taking it for "all" would be a quiet escalation.
                throw AuthConfigurationError("API key file: \(label) prefixes is empty (omit it for every stream)")
            }
            if prefixes.contains("") {
                throw AuthConfigurationError("API key file: \(label) has an empty prefix (omit prefixes for every stream)")
            }
            if prefixes.isEmpty { prefixes = [""] }
            let digest: String
            switch (fields["sha256"]?.string, fields["secret"]?.string) {
            case (let hex?, nil):
                guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
                    throw AuthConfigurationError("API key file: \(label) sha256 must be 64 lower-case hex digits")
                }
                digest = hex
            case (nil, let secret?):
                guard secret.utf8.count >= 16 else {
                    throw AuthConfigurationError("API key file: \(label) secret must be at least 16 characters")
                }
                digest = Self.digest(secret)
            default:
                throw AuthConfigurationError("API key file: \(label) needs exactly one of sha256 or secret")
            }
            guard byDigest[digest] == nil else { throw AuthConfigurationError("API key file: \(label) repeats another key") }
            byDigest[digest] = Principal(name: name, grants: prefixes.map { Grant(scope, prefix: $0) })
        }
    }

    /// Loads a key file. Blocking: at start-up or reload, not on an event loop.
    public static func load(path: String) throws(AuthConfigurationError) -> APIKeys {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AuthConfigurationError("cannot read API key file \(path): \(error.localizedDescription)")
        }
        return try APIKeys(toml: text)
    }

    /// Who a presented key belongs to, if anyone.
    public func principal(forKey key: Substring) -> Principal? {
        byDigest[Self.digest(key)]
    }

    /// Lower-case hex SHA-256 of `text`'s UTF-8 bytes.
    public static func digest(_ text: some StringProtocol) -> String {
        let hash = SHA256.hash(data: Array(text.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in hash {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A configuration of authentication that cannot be used, with what is wrong.
public struct AuthConfigurationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
