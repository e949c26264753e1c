import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Where a server's TLS certificate and key live (`tls_certificate_file`, `tls_key_file`).
public struct TLSSettings: Equatable, Sendable {
    /// PEM: the server's certificate first, then any intermediates.
    public var certificateFile: String
    /// PEM: the certificate's private key (RSA or EC), unencrypted.
    public var keyFile: String
    /// Offer HTTP/2 in ALPN (`h2` before `http/1.1`). On by default: a browser opens at most six
    /// HTTP/1.1 connections to a host, so without it a page holds at most six SSE streams.
    public var http2: Bool

    public init(certificateFile: String, keyFile: String, http2: Bool = true) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.http2 = http2
    }

    /// The settings in `file`: both files or neither (`nil`); `http2` on its own is an error.
    public static func read(from file: ConfigurationFile) throws -> TLSSettings? {
        let certificate = try file.string("tls_certificate_file")
        let key = try file.string("tls_key_file")
        let http2 = try file.bool("http2")
        switch (certificate, key) {
        case (nil, nil):
            if http2 != nil { throw file.problem("http2", "'http2' needs TLS: set tls_certificate_file and tls_key_file") }
            return nil
        case (let certificate?, let key?):
            return TLSSettings(certificateFile: certificate, keyFile: key, http2: http2 ?? true)
        case (nil, _):
            throw file.problem("tls_key_file", "'tls_key_file' needs 'tls_certificate_file' too")
        case (_, nil):
            throw file.problem("tls_certificate_file", "'tls_certificate_file' needs 'tls_key_file' too")
        }
    }

    /// The keys `read(from:)` knows.
    public static let keys: Set<String> = ["tls_certificate_file", "tls_key_file", "http2"]
}

/// A listening server's TLS: the context every new connection is given, replaceable while the
/// server runs (`reload`), so that a renewed certificate takes effect without a restart.
/// Connections already open keep the context they started with.
public final class ServerTLS: Sendable {
    /// A certificate or key that cannot be used, phrased for the operator.
    public struct Problem: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let offersHTTP2: Bool
    private let context: NIOLockedValueBox<NIOSSLContext>

    /// Reads and checks both files (blocking: call it at startup or from a reload, never on an
    /// event loop).
    public init(_ settings: TLSSettings) throws {
        offersHTTP2 = settings.http2
        context = NIOLockedValueBox(try Self.makeContext(settings))
    }

    /// Reads the files again and uses them for connections from now on. On an error nothing
    /// changes. `http2` cannot change without a restart (the listening pipeline is built once).
    public func reload(_ settings: TLSSettings) throws {
        let fresh = try Self.makeContext(TLSSettings(certificateFile: settings.certificateFile, keyFile: settings.keyFile, http2: offersHTTP2))
        context.withLockedValue { $0 = fresh }
    }

    /// What a running server's `reloadTLS` does: reloads `current` from `settings`; nothing to
    /// do without TLS before or after; `TLSReloadError` when TLS would be turned on or off.
    public static func reload(_ current: ServerTLS?, with settings: TLSSettings?) throws {
        switch (current, settings) {
        case (nil, nil): return
        case (let tls?, let settings?): try tls.reload(settings)
        default: throw TLSReloadError()
        }
    }

    /// A listening server's base URL, `http://` or `https://`, an IPv6 host in brackets.
    public static func baseURL(host: String, port: Int, tls: TLSSettings?) -> String {
        "\(tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// The handler a new connection starts with.
    public func makeHandler() -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: context.withLockedValue { $0 })
    }

    private static func makeContext(_ settings: TLSSettings) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificateFile)
        } catch {
            throw Problem(description: "\(settings.certificateFile): not a readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw Problem(description: "\(settings.certificateFile): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.keyFile, format: .pem)
        } catch {
            throw Problem(description: "\(settings.keyFile): not a readable, unencrypted PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = settings.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL checks that the key belongs to the certificate here.
            throw Problem(description: "\(settings.certificateFile), \(settings.keyFile): cannot be used together (\(error))")
        }
    }
}

/// A reload asked to turn TLS on or off, which only a restart can do.
public struct TLSReloadError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "turning TLS on or off needs a restart (tls_certificate_file, tls_key_file)" }
}
