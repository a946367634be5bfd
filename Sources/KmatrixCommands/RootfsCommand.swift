import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixUserspace

extension RootfsOptions.InitMode: ExpressibleByArgument {}

struct RootfsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rootfs",
        abstract: "Build busybox and the rootfs image of the selected cells (the run's graph up to rootfs) and print their paths.",
        discussion: """
            The same steps `kmatrix run` executes and caches. Busybox is built once per (Debian \
            architecture, toolchain). The rootfs carries the kernel's modules, so the cell's kernel \
            is built (or taken from the cache) first. Initramfs cells get initramfs.cpio.gz, \
            initrd and disk cells rootfs.<ext2|ext4> (made without root); each is linked into \
            <cache>/build/<cell>/images.
            """)

    @OptionGroup var options: ProjectOptions
    @OptionGroup var upstream: UpstreamCacheOption
    @Option(help: "Job slots shared by every make (default: the number of cores).") var jobs: Int?
    @Option(name: .customLong("init"), help: "unattended (print the boot marker, reboot) or interactive (a shell on the console).")
    var initMode: RootfsOptions.InitMode = .unattended
    @Option(help: "A folder copied on top of the rootfs.") var overlay: String?
    @Option(name: .customLong("cpio-list"), help: "A gen_init_cpio list whose entries are added to the rootfs.") var cpioList: String?
    @Option(help: "Staged kernel modules (the INSTALL_MOD_PATH of make modules_install), used instead of the kernel build's.") var modules: String?
    @Flag(help: "Print JSON (schema kmatrix-rootfs/1; progress goes to standard error).") var json = false
    @Flag(help: "Plain timestamped lines even on a terminal.") var plain = false

    struct CellOutput: Encodable {
        var cell: String
        var outcome: String
        /// The image where boots find it (a link into the cache).
        var image: String?
        /// The published image in the cache.
        var cached: String?
        var kind: String
        var busybox: String?
    }

    func run() async throws {
        guard jobs.map({ $0 >= 1 }) ?? true else { throw KmatrixError.badInput("--jobs must be at least 1") }
        let cwd = FileManager.default.currentDirectoryPath
        var settings = RunSettings(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        settings.goals = [.rootfs]
        settings.progressToStandardError = json
        settings.live = !plain && !json && Progress.stdoutIsTerminal
        settings.rootfs.initMode = initMode
        settings.rootfs.overlay = overlay.map { absolutePath($0, relativeTo: cwd) }
        settings.rootfs.cpioList = cpioList.map { absolutePath($0, relativeTo: cwd) }
        settings.rootfs.modules = modules.map { absolutePath($0, relativeTo: cwd) }
        for (flag, path) in [("--overlay", settings.rootfs.overlay), ("--cpio-list", settings.rootfs.cpioList), ("--modules", settings.rootfs.modules)] {
            if let path, !FileManager.default.fileExists(atPath: path) { throw KmatrixError.badInput("\(flag) \(path) does not exist") }
        }
        let finished = try await runPart(options, settings, upstream: upstream)
        let kinds = Dictionary(try options.load().cells.map { ($0.id, $0.rootDevice.kind.rawValue) }, uniquingKeysWith: { a, _ in a })
        var cells: [CellOutput] = []
        for cell in finished.results.cells {
            var output = CellOutput(cell: cell.id, outcome: cell.outcome.rawValue, kind: kinds[cell.id] ?? "", busybox: cell.artifacts.first { $0.name == "busybox" }?.path)
            if case .rootfs(let rootfs)? = finished.outcomes[StepID(.rootfs, cell.id)]?.output {
                output.image = rootfs.linked
                output.cached = rootfs.image
            }
            cells.append(output)
            if !json {
                print("\(cell.id): \(output.image ?? cell.outcome.rawValue)")
                for line in cell.excerpt.prefix(cell.passed ? 0 : 12) { print("  | \(line)") }
            }
        }
        if json { try printJSON(["cells": cells], schema: "kmatrix-rootfs/1") }
        try exitStatus(finished)
    }
}
