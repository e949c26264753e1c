import DurableStreams
import NIOHTTP1

/// A header that may appear at most once (`Authorization`): absent, its one value, or repeated.
public enum SingleHeader: Equatable, Sendable {
    case absent
    case one(String)
    case repeated

    /// The header's value when it appears at most once.
    public var value: String? {
        if case .one(let value) = self { return value }
        return nil
    }
}

extension HTTPHeaders {
    /// `name` looked up as a header that may appear once, in one pass and without the array
    /// `headers[name]` builds: this runs on every request that carries credentials.
    public func single(_ name: String) -> SingleHeader {
        var found = SingleHeader.absent
        for (candidate, value) in self where HeaderName.equalIgnoringCase(candidate, name) {
            guard case .absent = found else { return .repeated }
            found = .one(value)
        }
        return found
    }
}
