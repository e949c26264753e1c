import TestSupport

/// Raw-socket exchanges for tests that need exact bytes on the wire.
enum TestHTTPRaw {
    static func exchange(port: Int, _ request: String) async throws -> String {
        try await TestHTTP.raw(port: port, Array(request.utf8)).text
    }
}
