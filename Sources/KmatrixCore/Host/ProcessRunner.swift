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
        if command.cleanEnvironment == true {
            var values = BuildEnvironment.filtered(ProcessInfo.processInfo.environment)
            for (key, value) in command.environment { values[key] = value }
            return .custom(Dictionary(uniqueKeysWithValues: values.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
        }
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
                try await spawn(command, input: .none, output: .string(limit: limit), error: .string(limit: limit)) { _ in }
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
                try await spawn(command, input: .none, output: .fileDescriptor(fd, closeAfterSpawningProcess: false),
                                error: .fileDescriptor(fd, closeAfterSpawningProcess: false)) { _ in }
            }
            guard let result else { return .timedOut }
            return termination(result.terminationStatus)
        } catch {
            throw launchFailure(command, error)
        }
    }

    /// Runs with standard output and error as async sequences that `body` reads while the
    /// child runs (console watching); returns what `body` returned and how the child ended.
    /// `error: .combinedWithOutput` merges standard error into the output sequence.
    public static func stream<Err: ErrorOutputProtocol, Result: Sendable>(
        _ command: Command, error: Err,
        body: (Execution<NoInput, SequenceOutput, Err>) async throws -> Result
    ) async throws(KmatrixError) -> (Result, Termination) {
        do {
            let result = try await spawn(command, input: .none, output: .sequence, error: error, body: body)
            return (result.closureResult, termination(result.terminationStatus))
        } catch {
            throw launchFailure(command, error)
        }
    }

    /// Runs on this terminal (stdin, stdout and stderr inherited) until it exits. The child
    /// stays in kmatrix's session and group, as it needs the terminal; it is registered as
    /// a single process, and the terminal's settings are restored however it ends.
    public static func attached(_ command: Command) async throws(KmatrixError) -> Termination {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(1))]
        var saved = termios()
        let isTerminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0
        defer { if isTerminal { _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved) } }
        do {
            let result = try await spawn(command, options: options, ownGroup: false,
                                         input: .fileDescriptor(.standardInput, closeAfterSpawningProcess: false),
                                         output: .fileDescriptor(.standardOutput, closeAfterSpawningProcess: false),
                                         error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)) { _ in }
            return termination(result.terminationStatus)
        } catch {
            throw launchFailure(command, error)
        }
    }

    /// The one place kmatrix starts a process: the child is registered in `ProcessGroups`
    /// as soon as it exists and unregistered (its group killed) once it has been reaped.
    static func spawn<Input: InputProtocol, Output: OutputProtocol, Err: ErrorOutputProtocol, Result>(
        _ command: Command, options: PlatformOptions = platformOptions(), ownGroup: Bool = true,
        input: Input, output: Output, error: Err,
        body: (Execution<Input, Output, Err>) async throws -> Result
    ) async throws -> ExecutionResult<Result, Output, Err> {
        let spawned = SpawnedMember()
        defer { if let member = spawned.member { ProcessGroups.unregister(member) } }
        return try await Subprocess.run(
            executable(command.executable), arguments: Arguments(command.arguments), environment: environment(command),
            workingDirectory: command.workingDirectory.map { FilePath($0) }, platformOptions: options,
            input: input, output: output, error: error
        ) { execution in
            let pid = execution.processIdentifier.value
            let member: ProcessGroups.Member = ownGroup ? .group(pid) : .process(pid)
            ProcessGroups.register(member)
            spawned.member = member
            return try await body(execution)
        }
    }

    static func termination(_ status: TerminationStatus) -> Termination {
        switch status {
        case .exited(let code): .exited(code)
        case .signaled(let signal): .signaled(signal)
        }
    }

    public static func describe(_ status: TerminationStatus) -> String { termination(status).description }

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
                // A grace after the deadline: when every thread of the cooperative pool was
                // busy (two cores, parallel tests hashing and copying), a child that ended in
                // time and the expired timer become runnable together, and the timer could
                // win the race. A second short sleep lets the finished child be seen first;
                // one that is really still running is stopped a moment later.
                try await Task.sleep(for: min(.seconds(1), timeout / 10))
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

    /// SIGKILL to whatever is left of the session `pid` led (its pid is its group id).
    public static func killGroup(_ pid: pid_t) {
        guard pid > 1 else { return }
        _ = kill(-pid, SIGKILL)
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

/// The member a spawn registered, handed from the body (where the pid is known) to the
/// cleanup after Subprocess has reaped the child.
private final class SpawnedMember: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ProcessGroups.Member?
    var member: ProcessGroups.Member? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
