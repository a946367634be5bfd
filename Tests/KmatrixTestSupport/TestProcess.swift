import Foundation
import KmatrixCore

/// A program run to its end by a test, its standard output and error together.
///
/// The wait does not hold a thread of Swift's cooperative pool: `waitUntilExit()` in an
/// async test blocks one of its threads (two on a 2-core machine) for as long as the
/// program runs, and two tests running kmatrix for a minute each stalled every other test,
/// whose tool deadlines then expired. Here the process's termination handler resumes the test.
public enum TestProcess {
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           logPrefix: String = "kmatrix-test") async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let log = NSTemporaryDirectory() + "\(logPrefix)-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        // A test's time limit cancels it: the program gets SIGTERM (kmatrix then ends what it
        // started), and SIGKILL 15 s later (a program may inherit the test process's blocked
        // SIGTERM), so that a hung program fails its test instead of holding the whole run.
        let running = UncheckedProcess(process)
        let status: Int32 = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                do { try process.run() } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            running.end(grace: .seconds(15))
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}

/// A started `Process` handed to a cancellation handler (Foundation's `Process` is not
/// `Sendable`; `isRunning`, `processIdentifier` and `kill` are safe from any thread).
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }

    func end(grace: Duration) {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let seconds = Double(grace.components.seconds)
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            if self.process.isRunning { kill(pid, SIGKILL) }
        }
    }
}

extension Process {
    /// `waitUntilExit()` on a thread of its own (see `TestProcess`): an async test that waits
    /// for a program must not hold one of the cooperative pool's two threads meanwhile.
    public func exited() async {
        await Blocking.run { self.waitUntilExit() }
    }
}

extension FileHandle {
    /// `readDataToEndOfFile()` on a thread of its own, for the same reason.
    public func readAll() async -> Data {
        await Blocking.run { self.readDataToEndOfFile() }
    }
}
