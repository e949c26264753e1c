/// Where one exchange's response goes.
enum UpstreamExchangeTarget: Sendable {
    case buffered(UpstreamPendingRequest)
    case streaming(UpstreamStreamCore)

    var id: ObjectIdentifier {
        switch self {
        case .buffered(let request): ObjectIdentifier(request)
        case .streaming(let core): ObjectIdentifier(core)
        }
    }
}
