import NIOCore
import Testing

@testable import Subscriptions

@Suite("Subscriptions: webhook address policy")
struct WebhookAddressPolicyTests {
    enum Expected: Sendable { case allowed, loopback, refused }

    /// Each refused range with the addresses just inside both of its ends and just outside them.
    static let table: [(String, Expected)] = [
        // 0.0.0.0/8
        ("0.0.0.0", .refused), ("0.255.255.255", .refused), ("1.0.0.0", .allowed),
        // 10.0.0.0/8
        ("9.255.255.255", .allowed), ("10.0.0.0", .refused), ("10.255.255.255", .refused), ("11.0.0.0", .allowed),
        // 100.64.0.0/10
        ("100.63.255.255", .allowed), ("100.64.0.0", .refused), ("100.127.255.255", .refused), ("100.128.0.0", .allowed),
        // 127.0.0.0/8
        ("126.255.255.255", .allowed), ("127.0.0.0", .loopback), ("127.0.0.1", .loopback),
        ("127.255.255.255", .loopback), ("128.0.0.0", .allowed),
        // 169.254.0.0/16, cloud metadata included
        ("169.253.255.255", .allowed), ("169.254.0.0", .refused), ("169.254.169.254", .refused),
        ("169.254.255.255", .refused), ("169.255.0.0", .allowed),
        // 172.16.0.0/12
        ("172.15.255.255", .allowed), ("172.16.0.0", .refused), ("172.31.255.255", .refused), ("172.32.0.0", .allowed),
        // 192.0.0.0/24
        ("191.255.255.255", .allowed), ("192.0.0.0", .refused), ("192.0.0.255", .refused), ("192.0.1.0", .allowed),
        // Documentation: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24
        ("192.0.1.255", .allowed), ("192.0.2.0", .refused), ("192.0.2.255", .refused), ("192.0.3.0", .allowed),
        ("198.51.99.255", .allowed), ("198.51.100.0", .refused), ("198.51.100.255", .refused), ("198.51.101.0", .allowed),
        ("203.0.112.255", .allowed), ("203.0.113.0", .refused), ("203.0.113.255", .refused), ("203.0.114.0", .allowed),
        // 192.168.0.0/16
        ("192.167.255.255", .allowed), ("192.168.0.0", .refused), ("192.168.255.255", .refused), ("192.169.0.0", .allowed),
        // 198.18.0.0/15
        ("198.17.255.255", .allowed), ("198.18.0.0", .refused), ("198.19.255.255", .refused), ("198.20.0.0", .allowed),
        // 224.0.0.0/4 and 240.0.0.0/4 (with 255.255.255.255)
        ("223.255.255.255", .allowed), ("224.0.0.0", .refused), ("239.255.255.255", .refused),
        ("240.0.0.0", .refused), ("255.255.255.254", .refused), ("255.255.255.255", .refused),
        // Ordinary public addresses
        ("8.8.8.8", .allowed), ("93.184.216.34", .allowed),

        // IPv6: unspecified, loopback and the IPv4-compatible ::/96 around them
        ("::", .refused), ("::1", .loopback), ("::2", .refused), ("::ffff", .refused), ("::1:0:0", .refused),
        // ::ffff:0:0/96, judged by the embedded IPv4 address
        ("::ffff:8.8.8.8", .allowed), ("::ffff:10.0.0.1", .refused), ("::ffff:127.0.0.1", .loopback),
        ("::ffff:169.254.169.254", .refused), ("::fffe:ffff:ffff", .refused), ("::1:0:0:0", .refused),
        // 64:ff9b::/96, likewise; the local-use 64:ff9b:1::/48 refused
        ("64:ff9b::808:808", .allowed), ("64:ff9b::a00:1", .refused), ("64:ff9b::7f00:1", .loopback),
        ("64:ff9b::1:0:0", .refused), ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", .refused),
        ("64:ff9b:1::", .refused), ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", .refused), ("64:ff9b:2::", .refused),
        // 100::/64 discard-only
        ("100::", .refused), ("100::ffff:ffff:ffff:ffff", .refused), ("100:0:0:1::", .refused),
        // 2001::/32 Teredo, 2001:db8::/32 documentation
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .allowed), ("2001::", .refused),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("2001:1::", .allowed),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", .allowed), ("2001:db8::", .refused),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("2001:db9::", .allowed),
        // 2002::/16 6to4, judged by the embedded IPv4 address
        ("2002:808:808::", .allowed), ("2002:a00:1::", .refused), ("2002:a9fe:a9fe::", .refused),
        ("2003::", .allowed),
        // fc00::/7
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("fc00::", .refused),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("fe00::", .refused),
        // fe80::/10 and fec0::/10 (and what lies between the ranges, outside 2000::/3)
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("fe80::", .refused),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("fec0::", .refused),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused),
        // ff00::/8
        ("feff::", .refused), ("ff00::", .refused), ("ff02::1", .refused),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused),
        // Global unicast 2000::/3 is the only public IPv6, less 3fff::/20 (documentation)
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("2000::", .allowed),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .allowed), ("3fff::", .refused),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", .refused), ("3fff:1000::", .allowed),
        ("4000::", .refused), ("8000::", .refused),
        // Ordinary public addresses
        ("2606:4700:4700::1111", .allowed), ("2a00:1450:4001:81a::200e", .allowed),
    ]

    static let cases = table.map { Case(address: $0.0, expected: $0.1) }
    struct Case: Sendable, CustomStringConvertible {
        var address: String
        var expected: Expected
        var description: String { address }
    }

    @Test(arguments: cases)
    func classifies(_ item: Case) throws {
        let address = try SocketAddress(ipAddress: item.address, port: 443)
        let verdict = WebhookAddressPolicy.verdict(address)
        switch item.expected {
        case .allowed: #expect(verdict == .allowed)
        case .loopback: #expect(verdict == .loopback)
        case .refused:
            guard case .refused(let reason) = verdict else {
                Issue.record("\(item.address) was \(verdict)")
                return
            }
            #expect(!reason.isEmpty)
        }
    }

    @Test func loopbackIsReachableOnlyUnderTheException() throws {
        for text in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let address = try SocketAddress(ipAddress: text, port: 80)
            #expect(WebhookAddressPolicy.refusal(of: address, loopbackException: true) == nil)
            #expect(WebhookAddressPolicy.refusal(of: address, loopbackException: false) != nil)
        }
        // The exception is for loopback only.
        let metadata = try SocketAddress(ipAddress: "169.254.169.254", port: 80)
        #expect(WebhookAddressPolicy.refusal(of: metadata, loopbackException: true) != nil)
        let publicAddress = try SocketAddress(ipAddress: "8.8.8.8", port: 80)
        #expect(WebhookAddressPolicy.refusal(of: publicAddress, loopbackException: false) == nil)
    }

    @Test func rawBytesOfOtherLengthsAreRefused() {
        #expect(WebhookAddressPolicy.verdict(bytes: [8, 8, 8, 8]) == .allowed)
        #expect(WebhookAddressPolicy.verdict(bytes: [8, 8, 8]) != .allowed)
        #expect(WebhookAddressPolicy.verdict(bytes: []) != .allowed)
    }

    @Test func unixSocketsAreRefused() throws {
        let address = try SocketAddress(unixDomainSocketPath: "/tmp/hook.sock")
        #expect(WebhookAddressPolicy.verdict(address) != .allowed)
    }
}
