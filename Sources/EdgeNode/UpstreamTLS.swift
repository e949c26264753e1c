import NIOCore
import NIOSSL
import ServerSupport

/// How the edge speaks TLS to an `https://` upstream: whose certificates it trusts, and whether
/// it checks them at all (on by default; turning it off is for a test bench, never production).
public struct UpstreamTLSSettings: Equatable, Sendable {
    /// PEM file of the certificate authorities to trust; `nil`: the system's trust store.
    public var caFile: String?
    /// Check the upstream's certificate chain and that it names the upstream's host (or IP).
    public var verify = true
    /// The name sent in SNI and checked against the certificate; `nil`: the upstream's host
    /// (for an IP address, no SNI is sent and the certificate must name the IP).
    public var serverName: String?

    public init(caFile: String? = nil, verify: Bool = true, serverName: String? = nil) {
        self.caFile = caFile
        self.verify = verify
        self.serverName = serverName
    }

    /// The client context for these settings (reads `caFile`: call it off any event loop).
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = verify ? .fullVerification : .none
        if let caFile {
            let authorities: [NIOSSLCertificate]
            do {
                authorities = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ServerTLS.Problem(description: "\(caFile): not a readable PEM file of CA certificates (\(error))")
            }
            guard !authorities.isEmpty else { throw ServerTLS.Problem(description: "\(caFile): no certificate in the file") }
            configuration.trustRoots = .certificates(authorities)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// What a pool's connections need to start TLS: the context, made once, and the name to ask for.
struct UpstreamTLS: Sendable {
    let context: NIOSSLContext
    /// `nil` for an IP address: SNI carries only host names.
    let serverName: String?

    init(_ settings: UpstreamTLSSettings, host: String) throws {
        context = try settings.makeContext()
        let name = settings.serverName ?? host
        serverName = Self.isIPAddress(name) ? nil : name
    }

    func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverName)
    }

    private static func isIPAddress(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }
}
