import Dispatch
import Foundation

/// SIGINT and SIGTERM cancel the work, which tears down every child process group
/// (SIGTERM, then SIGKILL a second later); a second signal exits at once.
enum SignalScope {
    static func cancellingOnSignals<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            let count = SignalCount()
            source.setEventHandler {
                if count.increment() > 1 { exit(130) }
                FileHandle.standardError.write(Data("\nkmatrix: stopping every child process (again to quit at once)\n".utf8))
                task.cancel()
            }
            source.resume()
            sources.append(source)
        }
        defer { for source in sources { source.cancel() } }
        return try await task.value
    }
}

final class SignalCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
