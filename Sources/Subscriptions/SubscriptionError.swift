import Foundation

/// A refusal of a subscription request, in the shape §6–7 give errors:
/// `{"error": {"code": "...", "message": "...", ...}}` with an HTTP status.
public struct SubscriptionError: Error, Sendable, Equatable {
    /// A further member of the `error` object (e.g. `current_holder` for `ALREADY_CLAIMED`).
    public enum Detail: Sendable, Equatable {
        case string(String)
        case int(Int)
    }

    public var status: Int
    public var code: String
    public var message: String
    public var details: [String: Detail]

    public init(status: Int, code: String, _ message: String, details: [String: Detail] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    /// The JSON body of the refusal.
    public var body: [UInt8] {
        var error: [String: Any] = ["code": code, "message": message]
        for (key, value) in details {
            switch value {
            case .string(let text): error[key] = text
            case .int(let number): error[key] = number
            }
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])) ?? Data()
        return Array(data)
    }
}
