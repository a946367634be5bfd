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
            (target/toolchain/profile/rootfs) or a target name with one cell. A cell that boots \
            from a disk works on a temporary copy of its image, removed afterwards: the built \
            image never changes. --keep-changes FILE keeps the changes in FILE instead (made \
            from the built image when it does not exist, used as it is when it does).
            """)

    @Argument(help: "The cell, or a target with one cell (or use --cell / --target).") var cell: String?
    @OptionGroup var options: ProjectOptions
    @Option(name: .customLong("init"), help: "The init to run instead of the marker-printing one.")
    var initPath: String = ShellCommand.defaultInit
    @Option(help: "auto (KVM where the probe proved it), tcg or kvm.") var accel = AccelChoice.auto
    @Option(help: "For a disk root: keep the guest's changes in this image file (copied from the built image if missing).")
    var keepChanges: String?
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
        let choice = AcceleratorChoice(probeKernel: ProbeKernel.find(workspace: options.workspace, cells: project.cells),
                                       cacheFile: AcceleratorChoice.cacheFile(in: options.workspace))
        invocation.accelerator = try await accel.pick(for: chosen.target, choice: choice).0
        var scratch: String?
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        if let disk = invocation.disk {
            // Never the built image itself: a private copy, kept only when asked for.
            let copy: String
            if let keepChanges {
                copy = absolutePath(keepChanges, relativeTo: FileManager.default.currentDirectoryPath)
            } else {
                scratch = "\(options.workspace.runs)/shell-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                copy = "\(scratch!)/\((disk as NSString).lastPathComponent)"
            }
            try DiskCopy.make(of: disk, at: copy)
            invocation.disk = copy
            invocation.diskSnapshot = false
            print(keepChanges == nil ? "working on a copy of \(disk) (removed on exit; --keep-changes FILE keeps it)"
                                     : "changes go to \(copy)")
        } else if keepChanges != nil {
            throw KmatrixError.badInput("--keep-changes: \(chosen.id) boots from \(chosen.rootDevice.kind.rawValue), not a disk")
        }
        invocation.serial = "mon:stdio"
        print("\(chosen.id): Ctrl-A X quits, Ctrl-A C is QEMU's monitor")
        print("$ \(invocation.command)")
        let termination = try await AttachedConsole.run(invocation)
        if !termination.succeeded { throw ExitCode(1) }
    }
}

/// A private copy of a disk image for `shell`: made from `image` unless it already exists.
enum DiskCopy {
    static func make(of image: String, at path: String) throws(KmatrixError) {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path) else { return }
        do {
            try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.copyItem(atPath: image, toPath: path)
            // The cached image may be read-only; the copy is for writing.
            try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        } catch {
            throw .host("cannot copy \(image) to \(path)", underlying: error)
        }
    }
}
