/// A request the protocol rejects, with the HTTP status it maps to and a short reason
/// that is sent to the client as a plain-text body.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The HTTP status code classes the protocol uses for rejections.
    public enum Status: Int, Sendable {
        case badRequest = 400
        case unauthorized = 401
        case forbidden = 403
        case notFound = 404
        case methodNotAllowed = 405
        case conflict = 409
        case gone = 410
        case payloadTooLarge = 413
        case unsupportedMediaType = 415
        case internalServerError = 500
        case notImplemented = 501
        case serviceUnavailable = 503
        case insufficientStorage = 507
    }

    public var status: Status
    public var reason: String
    /// Extra protocol headers the rejection carries (e.g. `Stream-Closed` on a closed-stream 409).
    public var headers: [(String, String)]

    public init(_ status: Status, _ reason: String, headers: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public var description: String { "\(status.rawValue) \(reason)" }

    public static func == (lhs: ProtocolError, rhs: ProtocolError) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason
            && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(reason)
    }
}
