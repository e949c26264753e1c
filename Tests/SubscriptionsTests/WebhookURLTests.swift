import Subscriptions
import Testing

@Suite("Subscriptions: webhook URLs")
struct WebhookURLTests {
    struct Accepted: Sendable, CustomStringConvertible {
        var text: String
        var scheme: String
        var host: String
        var port: Int
        var target: String
        var description: String { text }
    }

    static let accepted: [Accepted] = [
        .init(text: "https://hooks.example.com/wake", scheme: "https", host: "hooks.example.com", port: 443, target: "/wake"),
        .init(text: "https://hooks.example.com", scheme: "https", host: "hooks.example.com", port: 443, target: "/"),
        .init(text: "https://hooks.example.com?a=1", scheme: "https", host: "hooks.example.com", port: 443, target: "/?a=1"),
        .init(text: "https://Hooks.Example.com:8443/a/b?x=1&y=%20", scheme: "https", host: "Hooks.Example.com", port: 8443, target: "/a/b?x=1&y=%20"),
        .init(text: "HTTPS://hooks.example.com/", scheme: "https", host: "hooks.example.com", port: 443, target: "/"),
        .init(text: "https://example.com./x", scheme: "https", host: "example.com.", port: 443, target: "/x"),
        .init(text: "https://8.8.8.8/hook", scheme: "https", host: "8.8.8.8", port: 443, target: "/hook"),
        .init(text: "https://[2606:4700::1111]:8443/hook", scheme: "https", host: "2606:4700::1111", port: 8443, target: "/hook"),
        .init(text: "https://localhost:9000/hook", scheme: "https", host: "localhost", port: 9000, target: "/hook"),
        .init(text: "http://localhost/hook", scheme: "http", host: "localhost", port: 80, target: "/hook"),
        .init(text: "http://LOCALHOST:8080/hook", scheme: "http", host: "LOCALHOST", port: 8080, target: "/hook"),
        .init(text: "http://127.0.0.1:65535/", scheme: "http", host: "127.0.0.1", port: 65535, target: "/"),
        .init(text: "http://127.0.0.0:1/", scheme: "http", host: "127.0.0.0", port: 1, target: "/"),
        .init(text: "http://127.0.0.255/", scheme: "http", host: "127.0.0.255", port: 80, target: "/"),
        .init(text: "https://127.0.0.1/", scheme: "https", host: "127.0.0.1", port: 443, target: "/"),
        .init(text: "https://hook_service.example.com/", scheme: "https", host: "hook_service.example.com", port: 443, target: "/"),
    ]

    @Test(arguments: accepted)
    func accepts(_ expected: Accepted) throws {
        let url = try WebhookURL.parse(expected.text)
        #expect(url.scheme == expected.scheme)
        #expect(url.host == expected.host)
        #expect(url.port == expected.port)
        #expect(url.target == expected.target)
        #expect(url.isTLS == (expected.scheme == "https"))
        #expect(url.description == expected.text)
    }

    static let rejected: [String] = [
        "",
        "hooks.example.com/wake",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://localhost/",
        "https:/hooks.example.com/",
        "https://user:pass@hooks.example.com/",
        "https://user@hooks.example.com/",
        "https://hooks.example.com@10.0.0.1/",
        "https://hooks.example.com/#frag",
        "https://hooks.example.com/a#",
        "https:///path",
        "https://:443/path",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:65536/",
        "https://hooks.example.com:99999999/",
        "https://hooks.example.com:-1/",
        "https://hooks.example.com:/",
        "https://hooks.example.com:8o/",
        "https://hooks.example.com/" + String(repeating: "a", count: 2048),
        "https://hooks.example.com/a b",
        "https://hooks.example.com/a\tb",
        "https://hooks.example.com/\n",
        " https://hooks.example.com/",
        "https://hooks.example.com\\@evil/",
        "https://hooks.exämple.com/",
        "https://hooks..example.com/",
        "https://[::1/",
        "https://[fe80::1%25eth0]/",
        "https://[not-v6]/",
        "https://[1.2.3.4]/",
        // Plain http is for the development exception only.
        "http://hooks.example.com/",
        "http://8.8.8.8/",
        "http://127.0.1.1/",
        "http://127.1.0.1/",
        "http://[::1]/",
        "http://localhost.:8080/",
        "http://localhost.example.com/",
        // IP literals in refused ranges, under either scheme.
        "http://10.0.0.1/hook",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://127.0.1.1/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a00:1]/",
        "https://[2001:db8::1]/",
        // Numeric spellings a resolver would read as IPv4.
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://0x7f000001/",
        "https://010.0.0.1/",
        "https://8.8.8.08/",
        "https://1.2.3.4.5/",
        "https://1.2.3.256/",
        "https://example.123/",
        "http://127.0.0.01/",
    ]

    @Test(arguments: rejected)
    func rejects(_ text: String) {
        #expect {
            try WebhookURL.parse(text)
        } throws: { error in
            guard let error = error as? SubscriptionError else { return false }
            return error.status == 400 && error.code == "WEBHOOK_URL_REJECTED" && !error.message.isEmpty
        }
    }

    @Test func aURLOfExactlyTheLimitIsAccepted() throws {
        let prefix = "https://hooks.example.com/"
        let text = prefix + String(repeating: "a", count: 2048 - prefix.utf8.count)
        #expect(try WebhookURL.parse(text).target.utf8.count == 2048 - prefix.utf8.count + 1)
        #expect(throws: SubscriptionError.self) { try WebhookURL.parse(text + "a") }
    }

    @Test func theRefusalSaysWhy() {
        do throws(SubscriptionError) {
            _ = try WebhookURL.parse("https://169.254.169.254/")
            Issue.record("accepted a link-local address")
        } catch {
            #expect(error.message.contains("link-local"))
        }
    }

    @Test func equalURLsHashAlike() throws {
        let a = try WebhookURL.parse("https://hooks.example.com/wake")
        let b = try WebhookURL.parse("https://hooks.example.com/wake")
        #expect(a == b)
        #expect(Set([a, b]).count == 1)
    }
}
