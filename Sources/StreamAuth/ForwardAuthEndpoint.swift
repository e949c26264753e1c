/// Where forward auth asks (`forward_auth_url`): an `http://host[:port][/path][?query]` URL,
/// parsed here by hand so that exactly what reaches the request line is what was checked.
///
/// `https://` is refused for now (the origin has no TLS client yet): run the endpoint on the
/// same host or a private network, or put a local TLS-terminating proxy in between.
public struct ForwardAuthEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// The host to connect to: a name, an IPv4 address, or an IPv6 address without brackets.
    public var host: String
    public var port: Int
    /// The request target sent, path and query: `/auth?x=1`; `/` when the URL has no path.
    public var target: String

    /// The `Host` header the endpoint receives (IPv6 in brackets, port always given).
    public var hostHeader: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { "http://\(hostHeader)\(target)" }

    public init(host: String, port: Int, target: String) {
        self.host = host
        self.port = port
        self.target = target
    }

    /// Parses `text`, or says what is wrong with it (phrased for an operator).
    public init(url text: String) throws(AuthConfigurationError) {
        func refuse(_ why: String) -> AuthConfigurationError {
            AuthConfigurationError("forward_auth_url \"\(text)\": \(why)")
        }
        // Anything outside visible ASCII would have to be encoded to go on the request line;
        // an operator's URL should already be written that way.
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw refuse("must be plain ASCII without spaces (percent-encode the rest)")
        }
        let lowered = text.lowercased()
        if lowered.hasPrefix("https://") {
            throw refuse("https is not supported yet; use an http:// endpoint on the same host or a private network")
        }
        guard lowered.hasPrefix("http://") else { throw refuse("must start with http://") }
        let rest = text.dropFirst("http://".count)
        guard !rest.contains("#") else { throw refuse("must not have a fragment (#…)") }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else { throw refuse("must not carry a user or password") }
        var hostPart = Substring(authority)
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw refuse("has an unclosed [ in its host") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw refuse("has text after its IPv6 host") }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw refuse("has no host") }
        var port = 80
        if let portPart {
            guard !portPart.isEmpty, portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber), portPart.count <= 5,
                let number = Int(portPart), (1...65535).contains(number)
            else { throw refuse("has a port that is not a number between 1 and 65535") }
            port = number
        }
        self.init(host: String(hostPart), port: port, target: target)
    }
}
