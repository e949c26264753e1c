import Foundation
import Testing
@testable import ServerSupport

@Suite("Access log")
struct AccessLogTests {
    @Test func anEntryIsOneLineOfJSON() throws {
        let entry = AccessLogEntry(
            time: 1_700_000_000.25, method: "GET", uri: "/v1/stream/a?offset=-1", status: 200, bytes: 12, milliseconds: 1.5, cache: "HIT")
        #expect(entry.jsonLine == #"{"time":"2023-11-14T22:13:20.250Z","method":"GET","uri":"/v1/stream/a?offset=-1","status":200,"bytes":12,"ms":1.500,"cache":"HIT"}"# + "\n")
        let object = try JSONSerialization.jsonObject(with: Data(entry.jsonLine.utf8)) as? [String: Any]
        #expect(object?["status"] as? Int == 200)
        // Who made it, when authentication said; a token's subject is the client's text.
        var named = entry
        named.principal = "al\"ice"
        let withPrincipal = try JSONSerialization.jsonObject(with: Data(named.jsonLine.utf8)) as? [String: Any]
        #expect(withPrincipal?["principal"] as? String == "al\"ice")
    }

    // A hostile URI can neither end the line nor break out of its string.
    @Test func aHostileURIStaysInsideItsString() throws {
        let uri = "/v1/stream/x\"}\n{\"forged\":1\u{1}\u{2028}\\"
        let line = AccessLogEntry(time: 0, method: "GET", uri: uri, status: 400, bytes: 0, milliseconds: 0, cache: nil).jsonLine
        #expect(line.split(separator: "\n").count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["uri"] as? String == uri)
        #expect(object?["cache"] == nil)
    }

    @Test func linesReachTheFileInOrder() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ds-access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try AccessLog(path: path)
        for index in 0..<500 {
            log.record(AccessLogEntry(time: 0, method: "GET", uri: "/\(index)", status: 200, bytes: index, milliseconds: 0, cache: nil))
        }
        log.flush()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 500)
        #expect(lines.first?.contains("\"uri\":\"/0\"") == true && lines.last?.contains("\"uri\":\"/499\"") == true)
        #expect(log.dropped == 0)
    }

    @Test func anUnwritablePathIsAClearError() {
        #expect(throws: ConfigurationFile.Problem.self) { try AccessLog(path: "/nonexistent-dir/access.log") }
    }
}
