import FuzzTargets

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A line on standard error (the C `stderr` global is not concurrency-safe to touch).
private func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

#if FUZZING
/// The target this fuzzer process runs, named by `DS_FUZZ_TARGET` (read once: libFuzzer calls
/// the entry point millions of times).
private let selectedTarget: FuzzTarget = {
    let name = getenv("DS_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let known = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        printError("set DS_FUZZ_TARGET to one of: \(known)")
        exit(2)
    }
    return target
}()

/// libFuzzer's per-input callback.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver (in the toolchain's fuzzer runtime, linked by `-sanitize=fuzzer`).
/// Pointer and integer arguments are passed alike by the Swift and C conventions on the
/// platforms we fuzz on.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// `main`, handing over to libFuzzer. SwiftPM on Linux links an executable's `main` to the
/// symbol `<module>_main` (its renamed entry point), which takes the place of the fuzzer
/// runtime's own `main`; this provides that symbol. Where no renaming happens, the runtime's
/// `main` is used and this is never called.
@_cdecl("durable_streams_fuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzTestOneInput)
}
#else
/// Without the fuzzer runtime: replays files through a target, so a crash input can be
/// reproduced with a plain debug build and a debugger.
@main
enum ReplayTool {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, name != "--help", name != "--list" else {
            print("usage: durable-streams-fuzz TARGET FILE...   (the fuzzer itself is built by `make fuzz`)")
            for target in FuzzTarget.allCases {
                print("  \(target.rawValue.padding(12)) \(target.inputFormat)")
            }
            return
        }
        guard let target = FuzzTarget(rawValue: name) else {
            printError("unknown target '\(name)'")
            exit(2)
        }
        for path in arguments.dropFirst() {
            guard let bytes = readFile(path) else {
                printError("cannot read \(path)")
                exit(1)
            }
            print("\(target.rawValue): \(path) (\(bytes.count) bytes)")
            target.run(bytes)
        }
    }

    /// The whole file, with the C library (no Foundation for one read).
    static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[..<count]
            if count < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
#endif
