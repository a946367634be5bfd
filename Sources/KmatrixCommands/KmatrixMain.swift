import ArgumentParser
import Foundation
import KmatrixCore

/// The `kmatrix` command tree. Every command lives here, in a library, so tests drive them.
public struct Kmatrix: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kmatrix",
        abstract: "Cross-build Linux kernels and a busybox userspace for a matrix of architectures, check their device trees, and boot every cell in QEMU.",
        discussion: """
            Exit status: 0 every cell passed, 1 some cell failed, 2 bad input (descriptors, \
            names, options), 3 the host failed (missing tool or source, full disk), 130 interrupted.
            """,
        version: KmatrixVersion.current,
        subcommands: [RunCommand.self, ListCommand.self, InitCommand.self, PlanCommand.self, DoctorCommand.self, BuildCommand.self, ReportCommand.self, CompareCommand.self, HistoryCommand.self, MergeCommand.self, CICommand.self, LavaCommand.self, CleanCommand.self, CacheCommand.self, CheckDTBCommand.self, BootCommand.self, ShellCommand.self, RootfsCommand.self, InitramfsCommand.self])

    public init() {}
}

public enum KmatrixMain {
    /// Parses, runs, and maps every error to a message on stderr and its exit status.
    public static func main(_ arguments: [String]? = nil) async {
        let code = await run(arguments)
        // A signal's teardown exits by itself once every child is gone (SignalScope).
        while SignalScope.received != nil { try? await Task.sleep(for: .seconds(1)) }
        exit(code)
    }

    /// Runs one command line with INT, TERM, HUP and QUIT handled (see `SignalScope`);
    /// after a signal the status is 128 + its number, whatever the command threw.
    public static func run(_ arguments: [String]?) async -> Int32 {
        SignalScope.install()
        let code = await execute(arguments)
        return SignalScope.received.map(SignalScope.exitCode(for:)) ?? code
    }

    static func execute(_ arguments: [String]?) async -> Int32 {
        do {
            let parsed = ParsedCommand(command: try Kmatrix.parseAsRoot(arguments))
            try await SignalScope.running {
                var command = parsed.command
                if var asyncCommand = command as? any AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    try command.run()
                }
            }
            return 0
        } catch let error as KmatrixError {
            printError(error.description)
            return error.exitCode
        } catch let errors as KmatrixErrors {
            for error in errors.errors { printError(error.description) }
            return errors.exitCode
        } catch is CancellationError {
            printError("interrupted")
            return KmatrixError(.interrupted, "").exitCode
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = Kmatrix.exitCode(for: error)
            let message = Kmatrix.fullMessage(for: error)
            if code == .success {
                print(message)
                return 0
            }
            printError(message)
            // Usage errors are bad input like any other: exit 2, nothing run.
            return code == .validationFailure ? 2 : code.rawValue
        }
    }
}

/// A parsed command handed to the task that runs it; only that task touches it.
struct ParsedCommand: @unchecked Sendable {
    var command: any ParsableCommand
}

func printError(_ message: String) {
    let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
    let text = lines.enumerated().map { $0.offset == 0 ? "kmatrix: error: \($0.element)" : String($0.element) }.joined(separator: "\n")
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
