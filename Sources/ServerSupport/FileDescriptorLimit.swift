#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit. Servers holding thousands of client connections, and the load
/// tester opening them, raise the soft limit to the hard one at start: the usual soft default of
/// 1,024 would otherwise refuse the 1,025th connection.
public enum FileDescriptorLimit {
    /// Raises the soft limit to the hard limit (or to `wanted`, if lower) and returns the soft
    /// limit in force afterwards.
    @discardableResult
    public static func raise(to wanted: UInt64 = .max) -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let target = min(UInt64(limit.rlim_max), wanted)
        if UInt64(limit.rlim_cur) < target {
            var raised = limit
            raised.rlim_cur = rlim_t(target)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return target }
        }
        return UInt64(limit.rlim_cur)
    }
}

extension FileDescriptorLimit {
    /// The soft limit in force now.
    public static var current: UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return UInt64(limit.rlim_cur)
    }
}
