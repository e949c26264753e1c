import NIOCore
import ServerSupport
import Testing

@Suite("ConnectionLimits in configuration files")
struct ConnectionLimitsFileTests {
    @Test func everyKeyIsRead() throws {
        var limits = ConnectionLimits()
        try limits.apply(ConfigurationFile(text: """
            header_timeout = "2s"
            idle_timeout = "3m"
            body_timeout = "4s"
            min_body_rate = 500
            send_timeout = "5s"
            min_send_rate = 300
            max_connections = 77
            max_request_bytes_in_flight = 1000
            """, path: "x.conf"))
        #expect(limits.headerTimeout == .seconds(2))
        #expect(limits.idleTimeout == .minutes(3))
        #expect(limits.bodyTimeout == .seconds(4))
        #expect(limits.minBodyBytesPerSecond == 500)
        #expect(limits.sendTimeout == .seconds(5))
        #expect(limits.minSendBytesPerSecond == 300)
        #expect(limits.maxConnections == 77)
        #expect(limits.maxRequestBytesInFlight == 1000)
    }

    @Test(arguments: [
        ("header_timeout = \"0s\"", 1), ("max_connections = 0", 1), ("min_body_rate = -1", 1),
        ("\nidle_timeout = 5", 2), ("send_timeout = \"soon\"", 1),
    ])
    func badValuesNameTheirLine(text: String, line: Int) {
        var limits = ConnectionLimits()
        #expect {
            try limits.apply(ConfigurationFile(text: text, path: "x.conf"))
        } throws: { error in
            "\(error)".hasPrefix("x.conf:\(line):")
        }
    }

    @Test func theShippedFilesSayTheDefaults() throws {
        let root = #filePath.components(separatedBy: "/Tests/")[0]
        for file in ["edge.conf", "origin/origin.conf"] {
            let parsed = try ConfigurationFile(path: root + "/" + file)
            var limits = ConnectionLimits()
            try limits.apply(parsed)
            #expect(limits == ConnectionLimits(), "\(file) documents other values than the defaults")
        }
    }
}
