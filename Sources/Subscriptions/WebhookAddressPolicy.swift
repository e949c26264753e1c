import NIOCore

/// Which network addresses a webhook may be delivered to: the SSRF rule, as a pure function of
/// the address bytes (no I/O), applied both to IP literals in a URL (at parse time) and to every
/// address a host name resolves to (just before connecting).
///
/// The server's own network is off limits: private, shared, link-local (where cloud metadata
/// services answer, 169.254.169.254), loopback, multicast, broadcast, reserved and documentation
/// ranges. Addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the
/// address they embed, since that is where the packets end up. For IPv6 the rule is an
/// allowlist: only global unicast (2000::/3), less its documentation, Teredo and 6to4 parts, is
/// public; the named ranges (fc00::/7, fe80::/10, ff00::/8, …) only give the refusal its reason.
///
/// Loopback is told apart from the other refusals because the development exception
/// (`localhost`, 127.0.0.x) may reach it; see `permits(_:loopbackException:)`.
enum WebhookAddressPolicy {
    /// What an address is, for the rule.
    enum Verdict: Equatable, Sendable {
        /// A public address: any webhook may reach it.
        case allowed
        /// 127.0.0.0/8 or ::1 (or one embedding 127/8): only the development exception may reach it.
        case loopback
        /// Never reachable by a webhook; the reason names the range.
        case refused(String)
    }

    /// Whether a webhook may connect to `address`. `loopbackException` is true only when the
    /// URL's host is the development exception (`WebhookURL.isLocalDevelopment`).
    /// Returns `nil` when it may, or why not.
    static func refusal(of address: SocketAddress, loopbackException: Bool) -> String? {
        switch verdict(address) {
        case .allowed: return nil
        case .loopback: return loopbackException ? nil : "loopback address"
        case .refused(let reason): return reason
        }
    }

    /// The verdict on a socket address; anything but IPv4 or IPv6 (a Unix socket) is refused.
    static func verdict(_ address: SocketAddress) -> Verdict {
        switch address {
        case .v4(let v4):
            return verdict(bytes: withUnsafeBytes(of: v4.address.sin_addr) { Array($0) })
        case .v6(let v6):
            return verdict(bytes: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) })
        case .unixDomainSocket:
            return .refused("not an IP address")
        }
    }

    /// The verdict on a raw address in network byte order: 4 bytes (IPv4) or 16 (IPv6).
    static func verdict(bytes: [UInt8]) -> Verdict {
        switch bytes.count {
        case 4: return verdict(ipv4: bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: return verdict(ipv6: bytes)
        default: return .refused("not an IP address")
        }
    }

    static func verdict(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Verdict {
        switch (a, b, c) {
        case (0, _, _): return .refused("\"this network\" address (0.0.0.0/8)")
        case (10, _, _): return .refused("private address (10.0.0.0/8)")
        case (100, 64...127, _): return .refused("shared address space (100.64.0.0/10)")
        case (127, _, _): return .loopback
        case (169, 254, _): return .refused("link-local address (169.254.0.0/16)")
        case (172, 16...31, _): return .refused("private address (172.16.0.0/12)")
        case (192, 0, 0): return .refused("IETF protocol assignment (192.0.0.0/24)")
        // The three documentation ranges, as 2001:db8::/32 is for IPv6: nothing real lives there.
        case (192, 0, 2), (198, 51, 100), (203, 0, 113): return .refused("documentation address")
        case (192, 168, _): return .refused("private address (192.168.0.0/16)")
        case (198, 18...19, _): return .refused("benchmarking address (198.18.0.0/15)")
        case (224...239, _, _): return .refused("multicast address (224.0.0.0/4)")
        // 240/4 includes 255.255.255.255, the limited broadcast.
        case (240...255, _, _): return .refused("reserved address (240.0.0.0/4)")
        default: return .allowed
        }
    }

    static func verdict(ipv6 bytes: [UInt8]) -> Verdict {
        precondition(bytes.count == 16)
        func prefixIsZero(_ count: Int) -> Bool { bytes[0..<count].allSatisfy { $0 == 0 } }
        func embedded(at offset: Int) -> Verdict {
            verdict(ipv4: bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3])
        }

        if prefixIsZero(15) {
            if bytes[15] == 1 { return .loopback }
            if bytes[15] == 0 { return .refused("unspecified address (::)") }
        }
        // ::ffff:0:0/96, IPv4-mapped: a socket sends it to the IPv4 address.
        if prefixIsZero(10), bytes[10] == 0xff, bytes[11] == 0xff { return embedded(at: 12) }
        // ::/96, the deprecated IPv4-compatible form; never a real destination.
        if prefixIsZero(12) { return .refused("IPv4-compatible address (::/96)") }
        // 64:ff9b::/96, well-known NAT64 prefix: the translator forwards to the embedded IPv4.
        if bytes[0..<12].elementsEqual([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]) { return embedded(at: 12) }
        // 64:ff9b:1::/48, local-use NAT64: whatever it translates to is the operator's own network.
        if bytes[0..<6].elementsEqual([0, 0x64, 0xff, 0x9b, 0, 1]) { return .refused("local NAT64 address (64:ff9b:1::/48)") }
        // 100::/64, discard-only.
        if bytes[0..<8].elementsEqual([0x01, 0, 0, 0, 0, 0, 0, 0]) { return .refused("discard-only address (100::/64)") }
        if bytes[0] == 0x20, bytes[1] == 0x01 {
            // 2001::/32, Teredo: tunnels to an obfuscated IPv4 address the rule cannot vouch for.
            if bytes[2] == 0, bytes[3] == 0 { return .refused("Teredo address (2001::/32)") }
            if bytes[2] == 0x0d, bytes[3] == 0xb8 { return .refused("documentation address (2001:db8::/32)") }
        }
        // 2002::/16, 6to4: relays deliver to the IPv4 address in bytes 2–5.
        if bytes[0] == 0x20, bytes[1] == 0x02 { return embedded(at: 2) }
        // 3fff::/20, documentation (RFC 9637).
        if bytes[0] == 0x3f, bytes[1] == 0xff, bytes[2] & 0xf0 == 0 { return .refused("documentation address (3fff::/20)") }
        // Only global unicast, 2000::/3, is routed on the internet; everything outside it
        // (the embedded forms above aside) is local, reserved or multicast. Named for the log:
        if bytes[0] & 0xe0 == 0x20 { return .allowed }
        if bytes[0] & 0xfe == 0xfc { return .refused("unique local address (fc00::/7)") }
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return .refused("link-local address (fe80::/10)") }
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0xc0 { return .refused("site-local address (fec0::/10)") }
        if bytes[0] == 0xff { return .refused("multicast address (ff00::/8)") }
        return .refused("reserved address (outside 2000::/3)")
    }
}
