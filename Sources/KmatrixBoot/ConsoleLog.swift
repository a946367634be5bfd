import Foundation
import Synchronization
import SystemPackage

/// `boot.log` with a size limit: a guest that prints without end must not fill the disk.
/// Past the limit the rest is dropped, one note line says where the log was cut, and the
/// console goes on being watched (the verdict does not depend on the file).
final class ConsoleLog: Sendable {
    private struct State {
        var written = 0
        var cutAt: Int?
    }
    private let fd: FileDescriptor
    private let limit: Int
    private let state = Mutex(State())

    init(_ fd: FileDescriptor, limit: Int) {
        self.fd = fd
        self.limit = limit
    }

    /// The byte count at which the log was cut, or nil while it is whole.
    var cutAt: Int? { state.withLock { $0.cutAt } }

    static func note(_ limit: Int) -> String { "\nkmatrix: console log cut at \(limit) bytes\n" }

    func append(_ bytes: [UInt8]) {
        state.withLock { state in
            guard state.cutAt == nil else { return }
            let room = limit - state.written
            if bytes.count <= room {
                _ = try? fd.writeAll(bytes)
                state.written += bytes.count
                return
            }
            _ = try? fd.writeAll(bytes.prefix(max(0, room)))
            _ = try? fd.writeAll(Array(Self.note(limit).utf8))
            state.written = limit
            state.cutAt = limit
        }
    }
}
