import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixKernel
import KmatrixUserspace

/// What one cell will do, step by step, with the exact commands: the output of
/// `kmatrix plan`, derived from the descriptors without running anything.
public struct CellPlan: Sendable, Encodable {
    public struct Step: Sendable, Encodable {
        public var name: String
        /// What kmatrix does in process (unpacking, packing, checking), when it runs no command.
        public var note: String?
        public var commands: [Command]
    }

    public var cell: String
    public var steps: [Step]

    /// The paths a cell's steps read and write.
    public struct Layout: Sendable {
        public var kernelSource: String
        public var busyboxSource: String
        public var kernelBuild: String
        public var busyboxBuild: String
        public var busyboxInstall: String
        public var images: String
    }

    public static func layout(for cell: Cell, workspace: Workspace, kernelSource: ResolvedSource?, busyboxSource: ResolvedSource?) -> Layout {
        func tree(_ source: ResolvedSource?, _ name: String) -> String {
            guard let source else { return "\(workspace.root)/src/\(name)-<sha256>" }
            return source.kind == .tree ? source.path : workspace.unpacked(name, sha256: source.sha256)
        }
        let userspaceToolchain = cell.toolchain.userspaceToolchain ?? cell.toolchain.name
        let busyboxBuild = workspace.busyboxBuild(debianArch: cell.target.userspace.debianArch, toolchain: userspaceToolchain)
        return Layout(kernelSource: tree(kernelSource, "linux"), busyboxSource: tree(busyboxSource, "busybox"),
                      kernelBuild: workspace.kernelBuild(cell), busyboxBuild: busyboxBuild,
                      busyboxInstall: "\(busyboxBuild)/install", images: workspace.images(cell))
    }

    public init(cell: Cell, project: Project, workspace: Workspace, jobs: Int, ccache: String?,
                kernelSource: ResolvedSource?, busyboxSource: ResolvedSource?) {
        let layout = Self.layout(for: cell, workspace: workspace, kernelSource: kernelSource, busyboxSource: busyboxSource)
        let kernel = KernelPlan(cell: cell, sourceTree: layout.kernelSource, buildDirectory: layout.kernelBuild, jobs: jobs, ccache: ccache)
        let userspaceToolchain = cell.toolchain.userspaceToolchain.flatMap { project.toolchains[$0] } ?? cell.toolchain
        let busybox = BusyboxPlan(crossCompile: userspaceToolchain.architectures[cell.target.userspace.debianArch]?.crossCompile,
                                  sourceTree: layout.busyboxSource, buildDirectory: layout.busyboxBuild,
                                  installDirectory: layout.busyboxInstall, jobs: jobs, options: project.matrix.busybox.options)
        var steps: [Step] = []
        func unpack(_ source: ResolvedSource?, _ what: String, _ tree: String) -> Step {
            guard let source else { return Step(name: "source.\(what)", note: "source not found on this machine (see kmatrix doctor)", commands: []) }
            if source.kind == .tree { return Step(name: "source.\(what)", note: "use the tree \(source.path)", commands: []) }
            return Step(name: "source.\(what)", note: "unpack \(source.path) (sha256 \(source.sha256)) into \(tree) with libarchive, once for all cells", commands: [])
        }
        steps.append(unpack(kernelSource, "kernel", layout.kernelSource))
        steps.append(unpack(busyboxSource, "busybox", layout.busyboxSource))
        // Exactly what the config step will ask for, fragment files and matrix options included.
        let identity = ToolchainIdentity(name: cell.toolchain.name, compiler: cell.toolchain.compilerPath(for: cell.toolchainArch), version: "not probed")
        let assembled = kernelSource.flatMap { try? KernelConfigInputs.assemble(cell: cell, project: project, source: $0, toolchain: identity) }
        let requested = assembled.map { $0.requested.map(\.option.configLine) } ?? kernel.requestedOptions.map(\.configLine)
        steps.append(Step(name: "kernel.config",
                          note: "write \(kernel.fragmentPath) (\(requested.count) options: \(requested.joined(separator: " "))), merge, then check every requested option in .config",
                          commands: kernel.configureCommands))
        steps.append(Step(name: "kernel.build", note: nil, commands: [kernel.buildCommand]))
        steps.append(Step(name: "busybox.build",
                          note: "shared by every \(cell.target.userspace.debianArch) cell built with \(userspaceToolchain.name); .config gets \(BusyboxPlan.requiredOptions.joined(separator: ", "))",
                          commands: busybox.commands))
        let image: String
        let invocation: QemuInvocation
        switch cell.rootDevice.kind {
        case .initramfs:
            image = "\(layout.images)/initramfs.cpio.gz"
            steps.append(Step(name: "rootfs", note: "assemble the rootfs from \(layout.busyboxInstall) and pack \(image) (cpio newc + gzip, in process)", commands: []))
            invocation = QemuInvocation(target: cell.target, rootDevice: cell.rootDevice, kernel: kernel.imagePath, dtb: nil, initrd: image)
        case .initrd, .disk:
            let fs = cell.rootDevice.filesystem ?? "ext2"
            image = "\(layout.images)/rootfs.\(fs)"
            steps.append(Step(name: "rootfs", note: "assemble the rootfs from \(layout.busyboxInstall) into \(layout.images)/rootfs, then make a filesystem image from it",
                              commands: [Command(["mke2fs", "-q", "-F", "-t", fs, "-d", "\(layout.images)/rootfs", image, "32M"])]))
            invocation = QemuInvocation(target: cell.target, rootDevice: cell.rootDevice, kernel: kernel.imagePath, dtb: nil,
                                        initrd: cell.rootDevice.kind == .initrd ? image : nil,
                                        disk: cell.rootDevice.kind == .disk ? image : nil)
        }
        var boot = invocation
        switch cell.target.deviceTree.source {
        case .none:
            steps.append(Step(name: "dtb.check", note: "no device tree on this target", commands: []))
        case .build:
            boot.dtb = kernel.dtbPaths.first
            steps.append(Step(name: "dtb.check", note: "check \(boot.dtb ?? "?") with libfdt against vmlinux", commands: []))
        case .qemu:
            let dumped = "\(layout.images)/qemu.dtb"
            steps.append(Step(name: "dtb.check", note: "check the DTB QEMU generates with libfdt against vmlinux",
                              commands: [invocation.dumpDTBCommand(to: dumped)]))
        }
        steps.append(Step(name: "boot", note: "console to boot.log, classified as it arrives; accelerator from the KVM probe", commands: [boot.command]))
        self.cell = cell.id
        self.steps = steps
    }
}
