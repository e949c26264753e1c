import EdgeNode
import OriginServer
import ServerSupport

extension Fuzz {
    /// `origin.conf`: TOML parsing, then the origin's settings. A bad file is a
    /// `ConfigurationFile.Problem` (a message for the operator), never a trap.
    ///
    /// Input: the file (files that are not UTF-8 are refused before parsing, as `--config` does).
    public static func originConfiguration(_ input: UnsafeRawBufferPointer) {
        guard let text = String(validating: input, as: UTF8.self) else { return }
        var configuration = OriginConfiguration()
        do {
            let file = try ConfigurationFile(text: text, path: "origin.conf")
            try configuration.apply(file)
        } catch {
            check(error is ConfigurationFile.Problem, "origin.conf refused with \(type(of: error)): \(error)")
            return
        }
        check((0...65535).contains(configuration.port), "port \(configuration.port) accepted")
        check(configuration.maxChunkBytes > 0 && configuration.maxBodyBytes > 0, "non-positive byte limit accepted")
        check(configuration.cursorIntervalSeconds >= 1, "cursor interval under 1 s accepted")
        check(configuration.compressionThresholdBytes >= 0, "negative compression threshold")
    }

    /// `edge.conf`: TOML parsing, then the edge's settings (listen address, upstream URL,
    /// budgets, durations, paths, `[[route]]` tables).
    ///
    /// Input: the file.
    public static func edgeConfiguration(_ input: UnsafeRawBufferPointer) {
        guard let text = String(validating: input, as: UTF8.self) else { return }
        var configuration = EdgeConfiguration()
        do {
            let file = try ConfigurationFile(text: text, path: "edge.conf")
            try configuration.apply(file)
        } catch {
            check(error is ConfigurationFile.Problem, "edge.conf refused with \(type(of: error)): \(error)")
            return
        }
        check((0...65535).contains(configuration.port) && (0...65535).contains(configuration.upstreamPort), "port out of range accepted")
        check(!configuration.host.isEmpty && !configuration.upstreamHost.isEmpty, "empty host accepted")
        check(configuration.cacheBudgetBytes >= 0 && configuration.maxBodyBytes > 0, "bad byte limit accepted")
        check(configuration.upstreamMaxConnections > 0 && configuration.upstreamMaxLongPollConnections > 0, "bad pool size accepted")
        for path in [configuration.metricsPath, configuration.statsPath, configuration.dashboardPath] {
            check(path.hasPrefix("/"), "path '\(path)' accepted")
        }
        check(configuration.routes.count <= EdgeRoute.maxRoutes, "\(configuration.routes.count) routes accepted")
        check(Set(configuration.routes.map(\.pathPrefix)).count == configuration.routes.count, "duplicate route prefixes accepted")
        for route in configuration.routes {
            check(route.pathPrefix.hasPrefix("/") && !route.pathPrefix.hasPrefix(configuration.streamPathPrefix), "route '\(route.pathPrefix)' accepted")
            check((0...65535).contains(route.upstreamPort) && route.maxConnections > 0 && route.maxResponseBytes > 0, "bad route limit accepted")
        }
    }
}
