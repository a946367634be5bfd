import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixUserspace

struct RootfsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rootfs",
        abstract: "Build busybox, the rootfs and the initramfs or filesystem image of the selected cells, and print their paths.",
        discussion: """
            Busybox is built once per (Debian architecture, toolchain) and reused while its \
            inputs are unchanged. Initramfs cells get images/initramfs.cpio.gz; initrd and \
            disk cells get images/rootfs.<ext2|ext4> made from images/rootfs without root.
            """)

    @OptionGroup var options: ProjectOptions
    @Option(help: "make -j for busybox.") var jobs: Int = 2
    @Option(name: .customLong("init"), help: "unattended (print the boot marker, reboot) or interactive (a shell on the console).")
    var initMode: String = RootfsOptions.InitMode.unattended.rawValue
    @Option(help: "A folder copied on top of the rootfs.") var overlay: String?
    @Option(name: .customLong("cpio-list"), help: "A gen_init_cpio list whose entries are added to the rootfs.") var cpioList: String?
    @Option(help: "Staged kernel modules (the INSTALL_MOD_PATH of make modules_install), put in lib/modules/<release>.") var modules: String?
    @Flag(help: "Print JSON.") var json = false

    struct CellOutput: Encodable {
        var cell: String
        var rootfs: String
        var image: String
        var kind: String
        var busybox: String
        var initramfs: InitramfsRecord?
        var filesystem: FilesystemImageRecord?
    }

    struct Output: Encodable {
        var busybox: [BusyboxBuildRecord]
        var cells: [CellOutput]
    }

    func run() async throws {
        guard let mode = RootfsOptions.InitMode(rawValue: initMode) else {
            throw KmatrixError.badInput("--init '\(initMode)' is not valid: unattended or interactive")
        }
        guard jobs >= 1 else { throw KmatrixError.badInput("--jobs must be at least 1") }
        let cwd = FileManager.default.currentDirectoryPath
        let overlay = overlay.map { absolutePath($0, relativeTo: cwd) }
        let cpioList = cpioList.map { absolutePath($0, relativeTo: cwd) }
        if let overlay, !FileManager.default.fileExists(atPath: overlay) { throw KmatrixError.badInput("--overlay \(overlay) does not exist") }
        if let cpioList, !FileManager.default.fileExists(atPath: cpioList) { throw KmatrixError.badInput("--cpio-list \(cpioList) does not exist") }
        let staged = try modules.flatMap { try StagedModules.find(stage: absolutePath($0, relativeTo: cwd)) }

        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let workspace = options.workspace
        let source = try SourceResolver.resolve(project.matrix.sources.busybox, what: "busybox", workspace: workspace, file: project.matrix.file)
        let tree = try await BusyboxBuilder.prepareSource(source, workspace: workspace)

        var builds: [String: BusyboxBuildRecord] = [:]
        var output = Output(busybox: [], cells: [])
        for cell in cells {
            let plan = BusyboxPlan(target: cell.target, toolchain: cell.toolchain, project: project, workspace: workspace,
                                   sourceTree: tree, jobs: jobs)
            let builder = BusyboxPlan.userspaceToolchain(for: cell.toolchain, in: project)
            let record: BusyboxBuildRecord
            if let done = builds[plan.buildDirectory] {
                record = done
            } else {
                record = try await BusyboxBuilder.build(plan, debianArch: cell.target.userspace.debianArch, toolchain: builder.name,
                                                        expect: cell.target.userspace, sourceSha256: source.sha256)
                builds[plan.buildDirectory] = record
                output.busybox.append(record)
                if !json {
                    print("busybox \(record.debianArch) (\(record.toolchain)): \(record.binary) [\(record.reused ? "up to date" : String(format: "built in %.0f s", record.buildSeconds))]")
                }
            }
            let rootfsOptions = RootfsOptions(busyboxInstall: record.installDirectory, rootDevice: cell.rootDevice.kind,
                                              console: cell.target.console.device, initMode: mode, overlay: overlay,
                                              cpioList: cpioList, modules: staged)
            let rootfs = try Rootfs.assemble(rootfsOptions)
            let images = workspace.images(cell)
            var result = CellOutput(cell: cell.id, rootfs: "\(images)/rootfs", image: "", kind: cell.rootDevice.kind.rawValue, busybox: record.binary)
            switch cell.rootDevice.kind {
            case .initramfs:
                let packed = try InitramfsWriter.write(rootfs, to: "\(images)/initramfs.cpio.gz")
                result.image = packed.path
                result.initramfs = packed
            case .initrd, .disk:
                let fs = cell.rootDevice.filesystem ?? "ext2"
                let image = try await FilesystemImage.make(rootfs, filesystem: fs, output: "\(images)/rootfs.\(fs)",
                                                          directory: "\(images)/rootfs", logPath: "\(images)/image.log")
                result.image = image.path
                result.filesystem = image
            }
            output.cells.append(result)
            if !json { print("\(cell.id): \(result.image)") }
        }
        if json { try printJSON(output) }
    }
}
