import NIOConcurrencyHelpers
import NIOCore

/// Ranges of segment files that a read hands out to be sent as they are (`sendfile`), instead
/// of bytes copied into memory. They own their descriptors: whoever writes them closes them
/// once the write has completed, and if the read is never written (a 304, a closed connection)
/// the last reference going away closes them.
public final class ReadFiles: @unchecked Sendable {
    let regions: [FileRegion]
    private let lock = NIOLock()
    private var open = true

    init(regions: [FileRegion]) {
        self.regions = regions
    }

    /// Closes the files. Call it only once nothing is being written from them.
    public func close() {
        let wasOpen = lock.withLock {
            defer { open = false }
            return open
        }
        guard wasOpen else { return }
        for region in regions { try? region.fileHandle.close() }
    }

    deinit {
        close()
    }
}
