import DurableStreams
import Foundation

/// A failed file or LMDB operation, as the file store reports it.
struct StorageError: Error, CustomStringConvertible {
    /// The errno (or LMDB code) of the failure.
    let code: Int32
    let operation: String

    var isNoSpace: Bool { code == ENOSPC || code == EDQUOT }

    var description: String { "\(operation): \(String(cString: strerror(code)))" }

    /// What a writer is told: 507 when the disk is full, 500 for other I/O failures. Earlier
    /// data stays readable either way.
    var protocolError: ProtocolError {
        isNoSpace
            ? ProtocolError(.insufficientStorage, "the server's disk is full; nothing was appended")
            : ProtocolError(.internalServerError, "storage error (\(description)); nothing was appended")
    }
}
