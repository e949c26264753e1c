import NIOCore

/// A subscriber's webhook URL, checked against SSRF as far as text alone allows.
///
/// `parse` accepts `https://` URLs to any host except an IP literal in a range
/// `WebhookAddressPolicy` refuses (private, link-local, loopback, …), and, for development,
/// `http://` URLs whose host is exactly `localhost` (any letter case) or an IPv4 literal in
/// 127.0.0.0/24 (the spec's "127.0.0.x"; the rest of 127/8 is refused for `http://`, as the spec
/// names only those). A host *name* is judged again when it is resolved: `WebhookClient` refuses
/// to deliver when any of its addresses is refused.
///
/// Refused outright, with status 400 and code `WEBHOOK_URL_REJECTED`: other schemes, user info
/// (`user@`), fragments, an empty host, a port outside 1–65535, more than 2048 bytes, control
/// characters, whitespace, backslashes and non-ASCII (host names must be in their ASCII/punycode
/// form), IPv6 zone identifiers, and numeric host spellings other than a plain dotted quad
/// (`127.1`, `0x7f.0.0.1`, `2130706433`, `010.0.0.1`): resolvers read those as IPv4 addresses,
/// and a rule that did not would be walked around by them.
public struct WebhookURL: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`, in lower case.
    public let scheme: String
    /// The host as written; an IPv6 literal without its brackets.
    public let host: String
    /// The explicit port, or 80 (`http`) / 443 (`https`).
    public let port: Int
    /// Path and query as written; `/` when the URL has no path.
    public let target: String
    /// The URL as given to `parse`.
    public let description: String

    /// Whether delivery is over TLS (`https`).
    public var isTLS: Bool { scheme == "https" }

    /// The longest URL accepted, in bytes.
    static let maximumLength = 2048

    /// Whether the host is an IP literal (what `WebhookClient` then connects to without resolving).
    var literalAddress: SocketAddress? {
        if let octets = Self.dottedQuad(host) {
            return try? SocketAddress(ipAddress: octets.map(String.init).joined(separator: "."), port: port)
        }
        return host.contains(":") ? try? SocketAddress(ipAddress: host, port: port) : nil
    }

    /// Whether the host is the development exception: `localhost` or 127.0.0.x. Only such URLs
    /// may use `http://`, and only their deliveries may reach loopback addresses.
    var isLocalDevelopment: Bool {
        if host.lowercased() == "localhost" { return true }
        guard let octets = Self.dottedQuad(host) else { return false }
        return octets[0] == 127 && octets[1] == 0 && octets[2] == 0
    }

    /// The `Host` header: the host (bracketed when IPv6) and the port unless it is the default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }

    private init(scheme: String, host: String, port: Int, target: String, description: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.target = target
        self.description = description
    }

    /// Parses and checks a webhook URL; throws a 400 `WEBHOOK_URL_REJECTED` saying why not.
    public static func parse(_ text: String) throws(SubscriptionError) -> WebhookURL {
        func reject(_ reason: String) -> SubscriptionError {
            SubscriptionError(status: 400, code: "WEBHOOK_URL_REJECTED", "webhook URL rejected: \(reason)")
        }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw reject("empty") }
        guard bytes.count <= maximumLength else { throw reject("longer than \(maximumLength) bytes") }
        // Printable ASCII only: whitespace, controls and non-ASCII are where parsers disagree
        // (one strips a tab, another splits on it), and a backslash is a slash to some.
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\\") }) else {
            throw reject("contains whitespace, control, backslash or non-ASCII characters")
        }
        guard !bytes.contains(UInt8(ascii: "#")) else { throw reject("has a fragment") }

        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw reject("not an absolute http(s) URL")
        }
        let scheme = text[..<colon].lowercased()
        guard scheme == "http" || scheme == "https" else { throw reject("scheme must be https (or http for localhost)") }
        let rest = text[text.index(colon, offsetBy: 3)...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let pathAndQuery = rest[authorityEnd...]
        guard !authority.contains("@") else { throw reject("user info is not allowed") }

        // Host and port: `[v6]`, `[v6]:port`, `name`, `name:port`.
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw reject("unterminated IPv6 literal") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw reject("malformed authority") }
                portText = after.dropFirst()
            }
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }),
                (try? SocketAddress(ipAddress: String(host), port: 0)).map({ if case .v6 = $0 { true } else { false } }) == true
            else { throw reject("malformed IPv6 literal") }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { throw reject("empty host") }
            guard host.utf8.count <= 253,
                host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" })
            else { throw reject("malformed host") }
            let labels = host.split(separator: ".", omittingEmptySubsequences: false)
            // One trailing dot (the DNS root) is allowed; an empty label anywhere else is not.
            let named = labels.last == "" ? labels.dropLast() : labels[...]
            guard !named.isEmpty, named.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 }) else {
                throw reject("malformed host")
            }
            // A host whose last label is numeric is an IPv4 address to a resolver (inet_aton
            // takes `127.1` and `0x7f000001`); only the plain dotted quad is accepted.
            let last = named.last!
            if last.allSatisfy(\.isNumber) || last.lowercased().hasPrefix("0x") {
                guard labels.last != "", dottedQuad(host) != nil else {
                    throw reject("numeric host must be a dotted-quad IPv4 address")
                }
            }
        }

        var port = scheme == "https" ? 443 : 80
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let number = Int(portText), (1...65535).contains(number)
            else { throw reject("bad port") }
            port = number
        }

        let url = WebhookURL(
            scheme: scheme, host: String(host), port: port,
            target: pathAndQuery.isEmpty ? "/" : (pathAndQuery.hasPrefix("?") ? "/\(pathAndQuery)" : String(pathAndQuery)),
            description: text)

        if scheme == "http" && !url.isLocalDevelopment {
            throw reject("http is allowed only for localhost and 127.0.0.x; use https")
        }
        if let address = url.literalAddress,
            let reason = WebhookAddressPolicy.refusal(of: address, loopbackException: url.isLocalDevelopment)
        {
            throw reject("host is a \(reason)")
        }
        return url
    }

    /// The four octets of a plain dotted-quad IPv4 literal (no leading zeros, each 0–255).
    static func dottedQuad(_ host: some StringProtocol) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            octets.append(value)
        }
        return octets
    }
}
