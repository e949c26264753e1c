import EdgeNode
import Foundation
import NIOCore
import OriginServer
import ServerSupport
import StreamStore
import TestSupport
import Testing

/// TLS on both servers (swift-nio-ssl), with certificates from a CA each test makes; the edge's
/// TLS to its upstream; certificate reload.
@Suite struct TLSTests {
    @Test func originAnswersOverTLS() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(origin: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "localhost")
        }) { edges in
            #expect(edges.origin.baseURL?.hasPrefix("https://") == true)
            let connection = try await TestConnection.connect(port: edges.origin.port!, tls: try ca.clientContext())
            defer { Task { await connection.close() } }
            let created = try await connection.request(.PUT, "/v1/stream/secure", headers: [("Content-Type", "text/plain")])
            #expect(created.status == 201)
            let appended = try await connection.request(.POST, "/v1/stream/secure", headers: [("Content-Type", "text/plain")], body: Array("hello".utf8))
            #expect(appended.status == 204)
            let read = try await connection.request(.GET, "/v1/stream/secure?offset=-1")
            #expect(read.status == 200)
            #expect(read.text == "hello")
            // The edge in front reached it over TLS, verifying its certificate for "localhost".
            let throughEdge = try await edges.request(.GET, "/v1/stream/secure?offset=-1")
            #expect(throughEdge.status == 200)
            #expect(throughEdge.text == "hello")
        }
    }

    /// A read large enough that a plain origin on the file store would send it from the file:
    /// over TLS the bytes must be read and encrypted instead, and arrive whole.
    @Test func largeReadsFromTheFileStoreArriveWholeOverTLS() async throws {
        let ca = try TestCertificateAuthority.shared
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-tls-store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = FileStoreOptions(directory: directory)
        options.hotTailBytes = 0  // every read goes to the files
        let store = try FileStore.open(options)
        try await withEdges(store: store, origin: {
            $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
            $0.compression = false
        }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "localhost")
        }) { edges in
            let connection = try await TestConnection.connect(port: edges.origin.port!, tls: try ca.clientContext())
            defer { Task { await connection.close() } }
            #expect(try await connection.request(.PUT, "/v1/stream/big", headers: [("Content-Type", "application/octet-stream")]).status == 201)
            let body = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(try await connection.request(.POST, "/v1/stream/big", headers: [("Content-Type", "application/octet-stream")], body: body).status == 204)
            var received: [UInt8] = []
            var offset = "-1"
            for _ in 0..<100 where received.count < body.count {
                let read = try await connection.request(.GET, "/v1/stream/big?offset=\(offset)")
                #expect(read.status == 200)
                received += read.body
                offset = try #require(read.header("Stream-Next-Offset"))
            }
            #expect(received == body)
        }
    }

    @Test func edgeRefusesAnUpstreamCertificateItDoesNotTrust() async throws {
        let ca = try TestCertificateAuthority.shared
        let other = try TestCertificateAuthority()
        defer { other.remove() }
        try await withEdges(origin: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: other.caFile, serverName: "localhost")
        }) { edges in
            let response = try await edges.request(.GET, "/v1/stream/any?offset=-1")
            #expect(response.status == 502)
        }
    }

    /// A certificate from a trusted authority for another name is refused as well: the chain
    /// alone is not enough, the certificate must name the upstream. (These certificates name no
    /// IP address: NIOSSL also accepts one that names the address the edge connected to.)
    @Test func edgeRefusesATrustedCertificateForAnotherName() async throws {
        let ca = try TestCertificateAuthority(serverName: "origin.internal", namesLoopback: false)
        defer { ca.remove() }
        let originTLS = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
        try await withEdges(origin: { $0.tls = originTLS }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "other.internal")
        }) { edges in
            let response = try await edges.request(.GET, "/v1/stream/any?offset=-1")
            #expect(response.status == 502)
        }
        // Connecting by the address alone, the certificate names nothing to match it either.
        try await withEdges(origin: { $0.tls = originTLS }, edge: { $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile) }) { edges in
            let response = try await edges.request(.GET, "/v1/stream/any?offset=-1")
            #expect(response.status == 502)
        }
        // The same authority and the certificate's own name: served.
        try await withEdges(origin: { $0.tls = originTLS }, edge: {
            $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile, serverName: "origin.internal")
        }) { edges in
            let response = try await edges.request(.GET, "/v1/stream/any?offset=-1")
            #expect(response.status == 404)
        }
    }

    @Test func edgeListensWithTLSAndOffersHTTP11ToClientsWithoutH2() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: { $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile) }) { edges in
            #expect(edges.edge.baseURL?.hasPrefix("https://") == true)
            #expect(try await edges.originRequest(.PUT, "/v1/stream/e", headers: [("Content-Type", "text/plain")], body: "abc").status == 201)
            let connection = try await TestConnection.connect(port: edges.port, tls: try ca.clientContext(protocols: ["http/1.1"]))
            defer { Task { await connection.close() } }
            let first = try await connection.request(.GET, "/v1/stream/e?offset=-1")
            #expect(first.text == "abc")
            let second = try await connection.request(.GET, "/v1/stream/e?offset=-1")
            #expect(second.header("X-Cache") == "HIT")
        }
    }

    /// SIGHUP's reload: new connections get the new certificate, open ones keep working.
    @Test func reloadedCertificateServesNewConnectionsWithoutDroppingOpenOnes() async throws {
        // A CA of its own: the test renews the server certificate in place.
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let settings = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
        try await withEdges(origin: { $0.tls = settings }, edge: { $0.upstreamTLS = UpstreamTLSSettings(caFile: ca.caFile) }) { edges in
            let port = edges.origin.port!
            let before = try await TestConnection.connect(port: port, tls: try ca.clientContext())
            defer { Task { await before.close() } }
            #expect(try await before.request(.PUT, "/v1/stream/r", headers: [("Content-Type", "text/plain")]).status == 201)

            let renewedCA = try ca.renew()
            try edges.origin.reloadTLS(settings)

            // A client that trusts only the new CA can connect now; one that trusts only the old
            // one cannot: the server presents the new certificate.
            let after = try await TestConnection.connect(port: port, tls: try ca.clientContext(trusting: renewedCA))
            defer { Task { await after.close() } }
            #expect(try await after.request(.GET, "/v1/stream/r?offset=-1").status == 200)
            await #expect(throws: (any Error).self) {
                let stale = try await TestConnection.connect(port: port, tls: try ca.clientContext())
                defer { Task { await stale.close() } }
                _ = try await stale.request(.GET, "/v1/stream/r?offset=-1")
            }
            // The connection opened before the reload goes on.
            #expect(try await before.request(.GET, "/v1/stream/r?offset=-1").status == 200)
        }
    }

    @Test func reloadCannotTurnTLSOnOrOffAndABadFileChangesNothing() async throws {
        let ca = try TestCertificateAuthority.shared
        let settings = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
        try await withEdges(origin: { $0.tls = settings }) { edges in
            #expect(throws: TLSReloadError.self) { try edges.origin.reloadTLS(nil) }
            #expect(throws: TLSReloadError.self) { try edges.edge.reloadTLS(settings) }
            #expect(throws: ServerTLS.Problem.self) {
                try edges.origin.reloadTLS(TLSSettings(certificateFile: ca.directory.path + "/missing.pem", keyFile: ca.keyFile))
            }
            let connection = try await TestConnection.connect(port: edges.origin.port!, tls: try ca.clientContext())
            defer { Task { await connection.close() } }
            #expect(try await connection.request(.GET, "/v1/stream/none?offset=-1").status == 404)
        }
    }

    @Test func startFailsWithTheFileNamedWhenTheCertificateCannotBeRead() async throws {
        let ca = try TestCertificateAuthority.shared
        var configuration = OriginConfiguration()
        configuration.port = 0
        configuration.tls = TLSSettings(certificateFile: ca.keyFile, keyFile: ca.keyFile)
        let server = OriginServer(configuration: configuration)
        do {
            try await server.start()
            Issue.record("started with a key as its certificate")
            try await server.shutdown()
        } catch let problem as ServerTLS.Problem {
            #expect(problem.description.contains(ca.keyFile))
            try? await server.shutdown()
        }

        var edge = EdgeConfiguration()
        edge.port = 0
        edge.upstreamTLS = UpstreamTLSSettings(caFile: ca.directory.path + "/no-such-ca.pem")
        let edgeServer = EdgeServer(configuration: edge)
        await #expect(throws: ServerTLS.Problem.self) { try await edgeServer.start() }
        try? await edgeServer.shutdown()
    }

    @Test func configurationFilesNameTLSMistakes() throws {
        func origin(_ text: String) throws -> OriginConfiguration {
            var configuration = OriginConfiguration()
            try configuration.apply(try ConfigurationFile(text: text, path: "origin.conf"))
            return configuration
        }
        func edge(_ text: String) throws -> EdgeConfiguration {
            var configuration = EdgeConfiguration()
            try configuration.apply(try ConfigurationFile(text: text, path: "edge.conf"))
            return configuration
        }
        let both = try origin("tls_certificate_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n")
        #expect(both.tls == TLSSettings(certificateFile: "c.pem", keyFile: "k.pem", http2: true))
        #expect(try origin("tls_certificate_file = \"c.pem\"\ntls_key_file = \"k.pem\"\nhttp2 = false\n").tls?.http2 == false)
        #expect(try origin("port = 1\n").tls == nil)
        #expect(throws: ConfigurationFile.Problem.self) { try origin("tls_certificate_file = \"c.pem\"\n") }
        #expect(throws: ConfigurationFile.Problem.self) { try origin("tls_key_file = \"k.pem\"\n") }
        #expect(throws: ConfigurationFile.Problem.self) { try origin("http2 = true\n") }

        let secure = try edge("upstream = \"https://origin.example:8443\"\nupstream_ca_file = \"ca.pem\"\n")
        #expect(secure.upstreamHost == "origin.example")
        #expect(secure.upstreamPort == 8443)
        #expect(secure.upstreamTLS == UpstreamTLSSettings(caFile: "ca.pem", verify: true, serverName: nil))
        #expect(secure.upstreamURL == "https://origin.example:8443")
        #expect(try edge("upstream = \"https://o:1\"\nupstream_tls_verify = false\n").upstreamTLS?.verify == false)
        #expect(try edge("upstream = \"http://o:1\"\n").upstreamTLS == nil)
        do {
            _ = try edge("upstream = \"http://o:1\"\nupstream_ca_file = \"ca.pem\"\n")
            Issue.record("a CA file for a plain upstream was accepted")
        } catch let problem as ConfigurationFile.Problem {
            #expect(problem.description.contains("edge.conf:2"))
            #expect(problem.description.contains("https://"))
        }
        #expect(throws: ConfigurationFile.Problem.self) { try edge("upstream = \"ftp://o:1\"\n") }
    }

    /// Before ALPN has chosen a protocol no request handler watches the connection: a client
    /// that connects and never completes the handshake is closed after the header timeout.
    @Test func aStalledHandshakeIsClosed() async throws {
        let ca = try TestCertificateAuthority.shared
        try await withEdges(edge: {
            $0.tls = TLSSettings(certificateFile: ca.certificateFile, keyFile: ca.keyFile)
            $0.limits.headerTimeout = .milliseconds(200)
            $0.limits.idleTimeout = .seconds(600)
        }) { edges in
            let silent = try await RawConnection.connect(port: edges.port)
            #expect(try await silent.closedByServer())
            let halfHello = try await RawConnection.connect(port: edges.port)
            // On a loaded machine the deadline may pass before these bytes go: closed either way.
            try? await halfHello.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            #expect(try await halfHello.closedByServer())
        }
    }
}
