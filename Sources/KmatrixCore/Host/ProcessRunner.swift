import Foundation
import Subprocess
import SystemPackage

/// How a child process ended.
public enum Termination: Sendable, Equatable, Codable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// kmatrix stopped it at its deadline.
    case timedOut

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        case .timedOut: "stopped at its deadline"
        }
    }
}

public struct CapturedOutput: Sendable {
    public var termination: Termination
    public var standardOutput: String
    public var standardError: String
    public var duration: Duration
}

/// Runs child processes the way every part of kmatrix must: in their own session (so the
/// whole process group can be signalled), with a deadline, SIGTERM then SIGKILL on
/// cancellation, and output captured with a bound or streamed to a log file.
public enum ProcessRunner {
    /// Teardown: SIGTERM to the whole group, one second, then SIGKILL.
    public static func platformOptions() -> PlatformOptions {
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(1))]
        return options
    }

    static func environment(_ command: Command) -> Environment {
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in command.environment { updates[Environment.Key(stringLiteral: key)] = value }
        return .inherit.updating(updates)
    }

    static func executable(_ name: String) -> Executable {
        name.contains("/") ? .path(FilePath(name)) : .name(name)
    }

    /// Runs to completion and returns its output (bounded: a runaway child cannot fill memory).
    public static func capture(_ command: Command, timeout: Duration? = nil, limit: Int = 4 << 20) async throws(KmatrixError) -> CapturedOutput {
        let start = ContinuousClock.now
        do {
            let result = try await withDeadline(timeout) {
                try await Subprocess.run(
                    executable(command.executable),
                    arguments: Arguments(command.arguments),
                    environment: environment(command),
                    workingDirectory: command.workingDirectory.map { FilePath($0) },
                    platformOptions: platformOptions(),
                    output: .string(limit: limit),
                    error: .string(limit: limit))
            }
            guard let result else {
                return CapturedOutput(termination: .timedOut, standardOutput: "", standardError: "", duration: ContinuousClock.now - start)
            }
            return CapturedOutput(termination: termination(result.terminationStatus),
                                  standardOutput: result.standardOutput,
                                  standardError: result.standardError,
                                  duration: ContinuousClock.now - start)
        } catch {
            throw launchFailure(command, error)
        }
    }

    /// Runs to completion with standard output and error appended to `logPath`.
    public static func run(_ command: Command, logPath: String, timeout: Duration? = nil) async throws(KmatrixError) -> Termination {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(logPath), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw .host("cannot open the log file \(logPath)", underlying: error)
        }
        defer { try? fd.close() }
        do {
            let result = try await withDeadline(timeout) {
                try await Subprocess.run(
                    executable(command.executable),
                    arguments: Arguments(command.arguments),
                    environment: environment(command),
                    workingDirectory: command.workingDirectory.map { FilePath($0) },
                    platformOptions: platformOptions(),
                    output: .fileDescriptor(fd, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(fd, closeAfterSpawningProcess: false))
            }
            guard let result else { return .timedOut }
            return termination(result.terminationStatus)
        } catch {
            throw launchFailure(command, error)
        }
    }

    static func termination(_ status: TerminationStatus) -> Termination {
        switch status {
        case .exited(let code): .exited(code)
        case .signaled(let signal): .signaled(signal)
        }
    }

    static func launchFailure(_ command: Command, _ error: any Error) -> KmatrixError {
        if error is CancellationError { return KmatrixError(.interrupted, "interrupted while running \(command.executable)") }
        if let kmatrix = error as? KmatrixError { return kmatrix }
        return .host("cannot run \(command.executable)", underlying: error)
    }

    /// Runs `body`, cancelling it at the deadline; `nil` means the deadline won.
    public static func withDeadline<T: Sendable>(_ timeout: Duration?, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        guard let timeout else { return try await body() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            while let first = try await group.next() {
                if let value = first { return value }
                // The deadline fired: cancel the child (Subprocess tears it down) and report.
                group.cancelAll()
                _ = try? await group.next()
                return nil
            }
            return nil
        }
    }

    /// The path of an executable found on PATH, or nil.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
