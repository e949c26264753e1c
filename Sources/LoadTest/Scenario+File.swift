import ServerSupport

extension Scenario {
    static let fileKeys: Set<String> = [
        "name", "kind", "streams", "readers_per_stream", "writers_per_stream", "appends_per_second", "message_bytes",
        "duration", "drain", "connect_rate", "content_type", "stream_bytes", "minimum_lifetime", "maximum_lifetime",
        "join_from_now_share", "latency_from",
    ]

    /// Reads a scenario file (TOML, like edge.conf). `kind` is required; everything else
    /// defaults as in the built-in scenario of that kind. The name defaults to the file's.
    public init(file: ConfigurationFile) throws {
        try file.rejectUnknownKeys(Self.fileKeys)
        guard let kindText = try file.string("kind") else {
            throw ConfigurationFile.Problem(description: "\(file.path): 'kind' is required (live, sse, catchup or mixed)")
        }
        guard let kind = Kind(rawValue: kindText) else {
            throw file.problem("kind", "'kind' must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let fileName = file.path.split(separator: "/").last.map { $0.hasSuffix(".conf") ? String($0.dropLast(5)) : String($0) }
        self.init(name: try file.string("name") ?? fileName ?? kindText, kind: kind)

        func positive(_ key: String) throws -> Int? {
            guard let value = try file.int(key) else { return nil }
            guard value > 0 else { throw file.problem(key, "'\(key)' must be positive") }
            return value
        }
        if let value = try positive("streams") { streams = value }
        if let value = try positive("readers_per_stream") { readersPerStream = value }
        if let value = try positive("writers_per_stream") { writersPerStream = value }
        if let value = try positive("message_bytes") { messageBytes = value }
        if let value = try positive("connect_rate") { connectRate = value }
        if let value = try positive("stream_bytes") { streamBytes = value }
        if let value = try file.number("appends_per_second") {
            guard value >= 0, value.isFinite else { throw file.problem("appends_per_second", "'appends_per_second' must not be negative") }
            appendsPerSecond = value
        }
        if let value = try file.number("join_from_now_share") {
            guard (0...1).contains(value) else { throw file.problem("join_from_now_share", "'join_from_now_share' must be between 0 and 1") }
            joinFromNowShare = value
        }
        if let value = try file.duration("duration") { duration = value }
        if let value = try file.duration("drain") { drain = value }
        if let value = try file.duration("minimum_lifetime") { minimumLifetime = value }
        if let value = try file.duration("maximum_lifetime") { maximumLifetime = value }
        if let value = try file.string("content_type") { contentType = value }
        if let value = try file.string("latency_from") {
            guard let start = LatencyStart(rawValue: value) else {
                throw file.problem("latency_from", "'latency_from' must be one of \(LatencyStart.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            latencyFrom = start
        }
        do {
            try validate()
        } catch let error as ScenarioError {
            throw ConfigurationFile.Problem(description: "\(file.path): \(error.message)")
        }
    }
}
