import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore

struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Boot one built cell with an interactive init, its console on this terminal.",
        discussion: """
            The same machine `kmatrix boot` runs, with the console attached: Ctrl-A X quits \
            QEMU, Ctrl-A C switches to its monitor. CELL is a cell id \
            (target/toolchain/profile/rootfs) or a target name with one cell.
            """)

    @Argument(help: "The cell, or a target with one cell (or use --cell / --target).") var cell: String?
    @OptionGroup var options: ProjectOptions
    @Option(name: .customLong("init"), help: "The init to run instead of the marker-printing one.")
    var initPath: String = ShellCommand.defaultInit
    @Option(help: "auto (KVM where the probe proved it), tcg or kvm.") var accel = "auto"
    @Option(name: .customLong("append"), help: "A word to add to the kernel command line (repeatable).") var appendWords: [String] = []

    /// busybox init: kmatrix's rootfs gives it an inittab that runs rcS (mounts) and then
    /// respawns a shell on the console. `--init /bin/sh` is the bare fallback.
    static let defaultInit = "/sbin/init"

    func run() async throws {
        let project = try options.load()
        var selection = options
        if let cell {
            if cell.contains("/") { selection.cells.append(cell) } else { selection.targets.append(cell) }
        }
        let cells = try selection.selectedCells(in: project)
        guard cells.count == 1, let chosen = cells.first else {
            throw KmatrixError.badInput(cells.isEmpty ? "no cell selected" :
                "kmatrix shell boots one cell; \(cells.count) match: \(cells.map(\.id).joined(separator: ", "))")
        }
        let images = try BootImages.forCell(chosen, workspace: options.workspace)
        var invocation = images.invocation(target: chosen.target, rootDevice: chosen.rootDevice)
        invocation.initPath = initPath
        invocation.extraAppend += appendWords
        switch accel {
        case "tcg": invocation.accelerator = .tcg
        case "kvm": invocation.accelerator = .kvm
        case "auto":
            let choice = AcceleratorChoice(probeKernel: Doctor.probeKernel(workspace: options.workspace, cells: project.cells),
                                           cacheFile: AcceleratorChoice.cacheFile(in: options.workspace))
            invocation.accelerator = await choice.choose(for: chosen.target).accelerator
        default:
            throw KmatrixError.badInput("--accel \(accel): valid values are auto, tcg, kvm")
        }
        invocation.serial = "mon:stdio"
        print("\(chosen.id): Ctrl-A X quits, Ctrl-A C is QEMU's monitor")
        print("$ \(invocation.command)")
        let termination = try await AttachedConsole.run(invocation)
        if !termination.succeeded { throw ExitCode(1) }
    }
}
