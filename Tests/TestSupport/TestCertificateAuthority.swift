import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A certificate authority made for one test: its certificate, and a server certificate it
/// signed for `localhost` and 127.0.0.1, written as PEM files in a fresh directory.
public struct TestCertificateAuthority: Sendable {
    public let directory: URL
    /// The CA's certificate (what a client trusts).
    public let caFile: String
    /// The server's certificate and key.
    public let certificateFile: String
    public let keyFile: String
    /// Whether the server certificate names 127.0.0.1 besides its DNS name.
    public let namesLoopback: Bool

    /// One CA and server certificate for every test that does not change them (made once).
    public static var shared: TestCertificateAuthority {
        get throws { try sharedResult.get() }
    }
    private static let sharedResult = Result { try TestCertificateAuthority() }

    /// - Parameters:
    ///   - serverName: the DNS name the server certificate is issued for.
    ///   - namesLoopback: whether it also names 127.0.0.1 (off: only `serverName` identifies it).
    public init(serverName: String = "localhost", namesLoopback: Bool = true) throws {
        self.namesLoopback = namesLoopback
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        caFile = directory.appendingPathComponent("ca.pem").path
        certificateFile = directory.appendingPathComponent("server.pem").path
        keyFile = directory.appendingPathComponent("server-key.pem").path

        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("durable-streams test CA") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true)
            },
            issuerPrivateKey: .init(caKey))
        try Self.write(ca.serializeAsPEM().pemString, to: caFile)
        try issue(serverName: serverName, caKey: caKey, caName: caName, now: now)
    }

    /// Issues a new server certificate and key over the old files (a renewal, for reload tests).
    public func renew(serverName: String = "localhost") throws -> String {
        // The CA's key is not kept: a renewal is signed by a second CA, which the test trusts
        // instead, so that it can tell the old certificate from the new.
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("durable-streams test CA (renewed)") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: Date() - 3600, notValidAfter: Date() + 86400, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true)
            },
            issuerPrivateKey: .init(caKey))
        let renewedCA = directory.appendingPathComponent("ca-renewed.pem").path
        try Self.write(ca.serializeAsPEM().pemString, to: renewedCA)
        try issue(serverName: serverName, caKey: caKey, caName: caName, now: Date())
        return renewedCA
    }

    private func issue(serverName: String, caKey: P256.Signing.PrivateKey, caName: DistinguishedName, now: Date) throws {
        let key = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: caName,
            subject: try DistinguishedName { CommonName(serverName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(
                    [.dnsName(serverName)] + (namesLoopback ? [.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))] : []))
                try ExtendedKeyUsage([.serverAuth])
            },
            issuerPrivateKey: .init(caKey))
        try Self.write(server.serializeAsPEM().pemString, to: certificateFile)
        try Self.write(key.pemRepresentation, to: keyFile)
    }

    /// A client context that trusts this CA (or `caFile`), offering `protocols` in ALPN.
    public func clientContext(trusting caFile: String? = nil, protocols: [String] = ["http/1.1"]) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caFile ?? self.caFile)
        configuration.applicationProtocols = protocols
        return try NIOSSLContext(configuration: configuration)
    }

    /// A server context presenting this CA's server certificate (HTTP/1.1 only).
    public func serverContext() throws -> NIOSSLContext {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
            privateKey: .file(keyFile))
        return try NIOSSLContext(configuration: configuration)
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}
