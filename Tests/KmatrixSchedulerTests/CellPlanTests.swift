import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

@Suite("kmatrix plan")
struct CellPlanTests {
    let project: Project
    let workspace = Workspace(root: "/cache")
    let kernel = ResolvedSource(kind: .tarball, path: "/usr/src/linux.tar.xz", sha256: String(repeating: "a", count: 64), bytes: 1)
    let busybox = ResolvedSource(kind: .tarball, path: "/bb.tar.bz2", sha256: String(repeating: "b", count: 64), bytes: 1)

    init() throws { project = try Project.load(root: repositoryRoot) }

    func plan(_ target: String) throws -> CellPlan {
        let cell = try #require(project.cells.first { $0.target.name == target })
        return CellPlan(cell: cell, project: project, workspace: workspace, jobs: 2, ccache: nil, kernelSource: kernel, busyboxSource: busybox)
    }

    func step(_ plan: CellPlan, _ name: String) throws -> CellPlan.Step {
        try #require(plan.steps.first { $0.name == name })
    }

    @Test func armBuildsZImageAndDTBOutOfTree() throws {
        let p = try plan("arm-vexpress-a9")
        let build = try step(p, "kernel.build").commands[0].argv
        #expect(build == ["make", "-C", "/cache/src/linux-aaaaaaaaaaaaaaaa", "O=/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/kernel",
                          "ARCH=arm", "CROSS_COMPILE=arm-linux-gnueabihf-", "-j2", "zImage", "vexpress-v2p-ca9.dtb"])
        let boot = try step(p, "boot").commands[0].argv
        #expect(boot.contains("/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/kernel/arch/arm/boot/dts/vexpress-v2p-ca9.dtb"))
        #expect(boot.contains("/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/images/initramfs.cpio.gz"))
    }

    @Test func configMergesWithTheKernelsOwnScript() throws {
        let commands = try step(try plan("riscv64-virt"), "kernel.config").commands.map(\.argv)
        #expect(commands[0].suffix(1) == ["tinyconfig"])
        #expect(commands[1][0] == "/cache/src/linux-aaaaaaaaaaaaaaaa/scripts/kconfig/merge_config.sh")
        #expect(commands[1][1...3] == ["-m", "-O", "/cache/build/riscv64-virt/gcc/tiny/initramfs/kernel"])
        #expect(commands[2].suffix(1) == ["olddefconfig"])
        #expect(commands[2].contains("ARCH=riscv") && commands[2].contains("CROSS_COMPILE=riscv64-linux-gnu-"))
    }

    @Test func qemuGeneratedDTBIsDumpedWithTheBootMachine() throws {
        let dump = try step(try plan("arm64-virt"), "dtb.check").commands[0].argv
        #expect(dump.contains("virt,dumpdtb=/cache/build/arm64-virt/gcc/tiny/initramfs/images/qemu.dtb"))
        #expect(dump.contains("cortex-a57"))
    }

    @Test func busyboxIsSharedPerArchitectureAndToolchain() throws {
        let commands = try step(try plan("x86_64-pc"), "busybox.build").commands.map(\.argv)
        #expect(commands[0] == ["make", "-C", "/cache/src/busybox-bbbbbbbbbbbbbbbb", "O=/cache/build/busybox/amd64-gcc",
                                "CROSS_COMPILE=x86_64-linux-gnu-", "defconfig"])
        #expect(commands.last?.contains("CONFIG_PREFIX=/cache/build/busybox/amd64-gcc/install") == true)
    }

    @Test func configNoteListsMatrixOptionsAndFragments() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try FileManager.default.createDirectory(atPath: "\(p.root)/Fragments", withIntermediateDirectories: true)
        try p.write("Fragments/debug.config", "CONFIG_PRINTK_TIME=y\n")
        try p.editJSON("matrix.json") { matrix in
            matrix["options"] = ["CONFIG_HZ_100=y"]
            matrix["fragments"] = ["Fragments/debug.config"]
        }
        let project = try Project.load(root: p.root)
        let cell = try #require(project.cells.first { $0.target.name == "arm64-virt" })
        let plan = CellPlan(cell: cell, project: project, workspace: workspace, jobs: 2, ccache: nil, kernelSource: kernel, busyboxSource: busybox)
        let note = try step(plan, "kernel.config").note ?? ""
        #expect(note.contains("CONFIG_HZ_100=y") && note.contains("CONFIG_PRINTK_TIME=y") && note.contains("CONFIG_SERIAL_AMBA_PL011=y"))
    }

    @Test func x86HasNoDeviceTree() throws {
        let p = try plan("x86_64-pc")
        #expect(try step(p, "dtb.check").commands.isEmpty)
        #expect(!(try step(p, "boot").commands[0].argv.contains("-dtb")))
    }
}
