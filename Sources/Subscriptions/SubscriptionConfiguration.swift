import Crypto
import DurableStreams
import Foundation

/// What a subscription `PUT` asks for (§6.2), validated and normalised: the explicit streams
/// sorted and without repeats, the lease defaulted. Two requests that mean the same thing give
/// equal values and the same `hash`, which is what re-confirmation compares.
public struct SubscriptionConfiguration: Sendable, Equatable {
    public enum Delivery: Sendable, Equatable {
        case webhook(WebhookURL)
        /// Wake events are appended to this stream (a canonical stream name).
        case pullWake(wakeStream: String)
    }

    public static let defaultLeaseMilliseconds = 30_000
    public static let leaseMilliseconds = 1_000...600_000
    /// Bounds on what one subscription may hold: a request cannot make the server keep or
    /// check an unbounded list.
    public static let maxStreams = 1_000
    public static let maxDescriptionBytes = 1_024

    public var delivery: Delivery
    public var pattern: GlobPattern?
    public var streams: [String]
    public var leaseMilliseconds: Int
    public var description: String?

    public var typeName: String {
        switch delivery {
        case .webhook: "webhook"
        case .pullWake: "pull-wake"
        }
    }

    public var wakeStream: String? {
        if case .pullWake(let stream) = delivery { return stream }
        return nil
    }

    /// A SHA-256 over the normalised fields, in a fixed order and unambiguous framing.
    public var hash: String {
        var text = "type=\(typeName)\n"
        text += "pattern=\(pattern?.description ?? "")\n"
        text += "streams=\(streams.map { "\($0.utf8.count):\($0)" }.joined())\n"
        switch delivery {
        case .webhook(let url): text += "webhook=\(url.description)\n"
        case .pullWake(let stream): text += "wake_stream=\(stream)\n"
        }
        text += "lease=\(leaseMilliseconds)\n"
        text += "description=\(description.map { "\($0.utf8.count):\($0)" } ?? "-")\n"
        return SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public init(delivery: Delivery, pattern: GlobPattern?, streams: [String], leaseMilliseconds: Int = defaultLeaseMilliseconds, description: String? = nil) {
        self.delivery = delivery
        self.pattern = pattern
        self.streams = Array(Set(streams)).sorted()
        self.leaseMilliseconds = leaseMilliseconds
        self.description = description
    }

    private struct Body: Decodable {
        struct Webhook: Decodable { var url: String? }
        var type: String?
        var pattern: String?
        var streams: [String]?
        var webhook: Webhook?
        var wake_stream: String?
        var lease_ttl_ms: Double?
        var description: String?
    }

    /// Parses and validates a `PUT` body. The webhook URL is checked for its form here (scheme,
    /// literal addresses); its host's addresses are checked when a delivery connects.
    public static func parse(_ body: [UInt8]) throws(SubscriptionError) -> SubscriptionConfiguration {
        let decoded: Body
        do {
            decoded = try JSONDecoder().decode(Body.self, from: Data(body))
        } catch {
            throw invalid("the body must be a JSON object with the subscription's fields")
        }
        let pattern: GlobPattern?
        if let text = decoded.pattern {
            guard let glob = GlobPattern(text) else { throw invalid("pattern is not a valid glob over stream paths") }
            pattern = glob
        } else {
            pattern = nil
        }
        let streams = try streamPaths(decoded.streams ?? [])
        guard pattern != nil || !streams.isEmpty else { throw invalid("pattern or streams is required") }
        let delivery: Delivery
        switch decoded.type {
        case "webhook":
            guard let url = decoded.webhook?.url else { throw invalid("webhook.url is required for a webhook subscription") }
            guard decoded.wake_stream == nil else { throw invalid("wake_stream is for pull-wake subscriptions") }
            delivery = .webhook(try WebhookURL.parse(url))
        case "pull-wake":
            guard let stream = decoded.wake_stream else { throw invalid("wake_stream is required for a pull-wake subscription") }
            guard decoded.webhook == nil else { throw invalid("webhook is for webhook subscriptions") }
            delivery = .pullWake(wakeStream: try streamPath(stream, field: "wake_stream"))
        case nil:
            throw invalid("type is required: webhook or pull-wake")
        case .some:
            throw invalid("type must be webhook or pull-wake")
        }
        var lease = defaultLeaseMilliseconds
        if let asked = decoded.lease_ttl_ms {
            // Compared as a Double: a client may send any number, and converting one outside
            // Int's range would trap.
            guard asked == asked.rounded(), asked >= Double(leaseMilliseconds.lowerBound), asked <= Double(leaseMilliseconds.upperBound) else {
                throw invalid("lease_ttl_ms must be a whole number from 1000 to 600000")
            }
            lease = Int(asked)
        }
        if let description = decoded.description, description.utf8.count > maxDescriptionBytes {
            throw invalid("description is longer than \(maxDescriptionBytes) bytes")
        }
        return SubscriptionConfiguration(delivery: delivery, pattern: pattern, streams: streams, leaseMilliseconds: lease, description: decoded.description)
    }

    /// Validates explicit stream paths as the stream routes do, so a link names the same stream
    /// a URL would.
    public static func streamPaths(_ paths: [String]) throws(SubscriptionError) -> [String] {
        guard paths.count <= maxStreams else { throw invalid("at most \(maxStreams) streams per subscription") }
        var result: [String] = []
        for path in paths { result.append(try streamPath(path, field: "streams")) }
        return Array(Set(result)).sorted()
    }

    static func streamPath(_ path: String, field: String) throws(SubscriptionError) -> String {
        // Paths in bodies are names, not URLs: a `%` is itself, so the structure (segments,
        // length, control characters) is checked with it standing for any other character.
        do {
            _ = try StreamPath.validate(Substring(path.replacingOccurrences(of: "%", with: "x")))
        } catch {
            throw invalid("\(field) holds an invalid stream path")
        }
        guard !SubscriptionPaths.isReserved(path) else { throw invalid("\(field) names a reserved __ds path") }
        return path
    }

    static func invalid(_ message: String) -> SubscriptionError {
        SubscriptionError(status: 400, code: "INVALID_REQUEST", message)
    }
}

/// The reserved control namespace (§6): a first path segment `__ds` is never a stream.
public enum SubscriptionPaths {
    public static let reservedSegment = "__ds"

    /// Whether a canonical stream name falls under the reserved prefix.
    public static func isReserved(_ name: String) -> Bool {
        name == reservedSegment || name.hasPrefix(reservedSegment + "/")
    }
}
