import Foundation
import KmatrixCore

/// QEMU with its serial console on this terminal (`kmatrix shell`, `kmatrix boot --gdb`):
/// stdin and stdout are inherited, `-serial mon:stdio` so Ctrl-A X quits and Ctrl-A C
/// reaches the monitor. QEMU stays in kmatrix's session because it needs the terminal
/// (`ProcessRunner.attached` registers it and restores the terminal's settings).
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
        return try await ProcessRunner.attached(Command([binary] + argv.dropFirst()))
    }
}
