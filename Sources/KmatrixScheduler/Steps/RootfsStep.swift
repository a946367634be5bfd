import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel
import KmatrixUserspace

/// What `kmatrix rootfs` adds to a rootfs beyond the defaults; part of the step's key.
public struct RootfsSettings: Sendable {
    public var initMode: RootfsOptions.InitMode = .unattended
    /// A folder copied on top of the rootfs.
    public var overlay: String?
    /// A gen_init_cpio list whose entries are added.
    public var cpioList: String?
    /// Staged modules (an INSTALL_MOD_PATH) used instead of the kernel build's.
    public var modules: String?

    public init() {}
}

/// `rootfs`: seed 003's skeleton around the busybox install, the kernel's modules, the
/// init, packed as a gzip'd cpio (in process) or an ext2/ext4 image (mke2fs -d + debugfs,
/// no root). Cached by `RootfsInputs`; the image is linked into the cell's images folder.
struct RootfsStep: Step {
    let cell: Cell
    let project: Project

    var id: StepID { StepID(.rootfs, cell.id) }
    var busyboxID: StepID { BusyboxStep.id(cell, project: project) }
    var kernelID: StepID { StepID(.kernelBuild, cell.id) }
    var dependencies: [StepID] { [busyboxID, kernelID] }

    /// Bumped when what the step writes changes meaning, so old entries are not reused.
    static let format = "kmatrix-rootfs-6"

    struct Inputs: Encodable {
        var format = RootfsStep.format
        var busybox: String
        var kind: String
        var filesystem: String?
        var console: String
        var consoleNode: ConsoleNode?
        var initMode: String
        /// `RootfsTree.digest()`: the content of every file that goes in (busybox, modules,
        /// an overlay, a cpio list's files), so an edit to any of them is a new image.
        var tree: String?
        /// `mke2fs -V` for filesystem images: another e2fsprogs lays the image out otherwise;
        /// for an initramfs, the compressor and its version (another libdeflate, other bytes).
        var imageTool: String?
    }

    var fileName: String {
        cell.rootDevice.kind == .initramfs ? "initramfs.cpio.gz" : "rootfs.\(cell.rootDevice.filesystem ?? "ext2")"
    }

    /// Where a filesystem image is made before it is published: a fixed place per cell,
    /// so that the commands are the same in `plan` and in the run.
    func workImage(_ context: StepContext) -> (image: String, directory: String) {
        let work = "\(context.workspace.images(cell))/work"
        return ("\(work)/\(fileName)", "\(work)/rootfs")
    }

    func stagedModules(_ context: StepContext, kernel: KernelBuildRecord?) throws(KmatrixError) -> StagedModules? {
        if let explicit = context.settings.rootfs.modules { return try StagedModules.find(stage: explicit) }
        guard let modules = kernel?.artifacts.modules else { return nil }
        return try StagedModules.find(libModules: modules)
    }

    func inputs(busybox: BusyboxBuildRecord, tree: RootfsTree, initMode: RootfsOptions.InitMode,
                imageTool: String? = nil) throws(KmatrixError) -> Inputs {
        Inputs(busybox: busybox.inputsHash, kind: cell.rootDevice.kind.rawValue, filesystem: cell.rootDevice.filesystem,
               console: cell.target.console.device, consoleNode: cell.target.console.node, initMode: initMode.rawValue,
               tree: try tree.digest(), imageTool: imageTool)
    }

    /// The version of the tool that makes filesystem images; for an initramfs, which kmatrix
    /// packs itself, its compressor's.
    func imageTool(_ context: StepContext) async throws(KmatrixError) -> String? {
        guard cell.rootDevice.kind != .initramfs else { return InitramfsWriter.compression.identity }
        return try await context.compilers.version("mke2fs", arguments: ["-V"], packages: ["e2fsprogs"])
    }

    func tree(_ context: StepContext, busybox: BusyboxBuildRecord, modules: StagedModules?) throws(KmatrixError) -> RootfsTree {
        let settings = context.settings.rootfs
        var options = RootfsOptions(busyboxInstall: busybox.installDirectory, rootDevice: cell.rootDevice.kind,
                                    console: cell.target.console.device, consoleNode: cell.target.console.node,
                                    initMode: settings.initMode,
                                    overlay: settings.overlay, cpioList: settings.cpioList, modules: modules)
        options.tests = GuestScript.of(cell)
        return try Rootfs.assemble(options)
    }

    /// The image's size: a power of two for disks (QEMU refuses any other SD card size,
    /// "SD card size has to be a power of 2"; virtio does not mind), else what the tree needs.
    func imageSizeKiB(_ tree: RootfsTree) -> Int {
        let size = FilesystemImage.suggestedSizeKiB(tree)
        return cell.rootDevice.kind == .disk ? powerOfTwoKiB(size) : size
    }

    func commands(_ context: StepContext, tree: RootfsTree) -> [Command] {
        guard cell.rootDevice.kind != .initramfs else { return [] }
        let work = workImage(context)
        return FilesystemImage.commands(tree, filesystem: cell.rootDevice.filesystem ?? "ext2", output: work.image,
                                        directory: work.directory, sizeKiB: imageSizeKiB(tree))
    }

    var packingNote: String {
        cell.rootDevice.kind == .initramfs ? "assemble the rootfs and pack \(fileName) in process (cpio newc + gzip)"
            : "assemble the rootfs, then make \(fileName) from it without root"
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        let busyboxStep = BusyboxStep(cell: cell, project: project)
        let busyboxPlan = context.busyboxPlan(cell, tree: context.sourceTree(context.busyboxSource, name: "busybox"))
        let note = packingNote + "; linked as \(context.workspace.images(cell))/\(fileName)"
        // With busybox built (and the kernel, for its modules) the image is known exactly.
        // The kernel's modules go in too, when its build is cached (else the plan cannot know them).
        let kernel = await KernelBuildStep(cell: cell).cachedRecord(context)
        let modules = (try? stagedModules(context, kernel: kernel)) ?? nil
        guard let busyboxKey = await busyboxStep.key(context, busyboxPlan), let busybox = busyboxStep.cached(context, busyboxKey),
              let tree = try? tree(context, busybox: busybox, modules: modules) else {
            return planned(note: note + "; the image size follows from the busybox build", commands: [])
        }
        let tool = try? await imageTool(context)
        let key = try? ArtifactCache.key(inputs(busybox: busybox, tree: tree, initMode: context.settings.rootfs.initMode, imageTool: tool))
        return planned(note: note, commands: commands(context, tree: tree), key: key,
                       cached: key.map { context.lookup(.rootfs, $0) != nil } ?? false)
    }

    func run(_ context: StepContext, _ stepInputs: StepInputs) async -> StepOutcome {
        let log = context.logPath(id)
        do {
            let busybox = try stepInputs.busybox(busyboxID)
            let kernel = try? stepInputs.kernel(kernelID)
            let modules = try stagedModules(context, kernel: kernel)
            let tree = try tree(context, busybox: busybox, modules: modules)
            let inputs = try inputs(busybox: busybox, tree: tree, initMode: context.settings.rootfs.initMode,
                                    imageTool: try await imageTool(context))
            let key = try ArtifactCache.key(inputs)
            let commands = commands(context, tree: tree)
            if let entry = context.lookup(.rootfs, key) {
                return published("\(entry)/\(fileName)", key: key, cacheHit: true, commands: commands, context)
            }
            let final = context.cache.entry(kind: id.kind.rawValue, key: key)
            let entry = try await context.cache.publish(kind: id.kind.rawValue, key: key, inputs: inputs) { staging in
                (try? await pack(tree, into: "\(staging)/\(fileName)", context: context, log: log)) != nil
            }
            guard entry == final else {
                return .failed(.rootfsFailed, "could not make \(fileName) (see the log)", logPath: log, commands: commands)
            }
            return published("\(final)/\(fileName)", key: key, cacheHit: false, commands: commands, context, log: log)
        } catch let failure as StepFailure {
            return .failed(failure.failure, failure.message, logPath: log)
        } catch let error as KmatrixError {
            return error.kind == .hostFailure || error.kind == .interrupted ? .host(error, logPath: log)
                : .failed(.rootfsFailed, error.description, logPath: log)
        } catch {
            return .failed(.rootfsFailed, "\(error)", logPath: log)
        }
    }

    /// Packs the tree into `output`: in process for an initramfs, else in the work folder
    /// with `commands` and then moved into place.
    func pack(_ tree: RootfsTree, into output: String, context: StepContext, log: String?) async throws(KmatrixError) {
        if cell.rootDevice.kind == .initramfs {
            // gzip of a few MB: off the cooperative pool, which boot watchers share.
            _ = try await InitramfsWriter.writeOffThePool(tree, to: output)
            return
        }
        let work = workImage(context)
        _ = try await FilesystemImage.make(tree, filesystem: cell.rootDevice.filesystem ?? "ext2", output: work.image,
                                           directory: work.directory, sizeKiB: imageSizeKiB(tree), logPath: log ?? "\(work.image).log")
        try? FileManager.default.removeItem(atPath: work.directory)
        guard rename(work.image, output) == 0 else { throw .host("cannot move \(work.image) to \(output): \(String(cString: strerror(errno)))") }
    }

    func published(_ image: String, key: String, cacheHit: Bool, commands: [Command], _ context: StepContext, log: String? = nil) -> StepOutcome {
        let linked = context.link(cell, image, as: fileName)
        return .passed(image, output: .rootfs(RootfsOutput(image: image, linked: linked, key: key)), cacheHit: cacheHit,
                       logPath: log, commands: commands, key: key)
    }
}

/// The smallest power of two KiB that holds `kib` (at least 4 MiB).
func powerOfTwoKiB(_ kib: Int) -> Int {
    var size = 4096
    while size < kib { size *= 2 }
    return size
}
