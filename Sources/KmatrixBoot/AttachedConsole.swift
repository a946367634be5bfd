import Foundation
import KmatrixCore
import Subprocess
import SystemPackage

/// QEMU with its serial console on this terminal (`kmatrix shell`, `kmatrix boot --gdb`):
/// stdin and stdout are inherited, `-serial mon:stdio` so Ctrl-A X quits and Ctrl-A C
/// reaches the monitor. QEMU stays in kmatrix's session because it needs the terminal;
/// the terminal's settings are restored however QEMU ends.
public enum AttachedConsole {
    public static func run(_ invocation: QemuInvocation) async throws(KmatrixError) -> Termination {
        var invocation = invocation
        invocation.serial = "mon:stdio"
        let argv = invocation.command.argv
        guard let binary = ProcessRunner.which(argv[0]) else {
            throw .host("\(argv[0]) is not installed (apt-get install \(invocation.target.qemu.package))")
        }
        // What kmatrix printed (the gdb line) must be out before QEMU owns the terminal.
        fflush(nil)
        var saved = termios()
        let isTerminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0
        defer { if isTerminal { _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved) } }
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(1))]
        do {
            let result = try await Subprocess.run(
                .path(FilePath(binary)), arguments: Arguments(Array(argv.dropFirst())), platformOptions: options,
                input: .fileDescriptor(.standardInput, closeAfterSpawningProcess: false),
                output: .fileDescriptor(.standardOutput, closeAfterSpawningProcess: false),
                error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false))
            switch result.terminationStatus {
            case .exited(let code): return .exited(code)
            case .signaled(let signal): return .signaled(signal)
            }
        } catch {
            throw .host("cannot run \(binary)", underlying: error)
        }
    }
}
