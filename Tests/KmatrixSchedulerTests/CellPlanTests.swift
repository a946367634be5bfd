import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

@Suite("kmatrix plan")
struct CellPlanTests {
    let project: Project
    let workspace = Workspace(root: "/cache")
    let sources = PlanSources(
        kernel: ResolvedSource(kind: .tarball, path: "/usr/src/linux.tar.xz", sha256: String(repeating: "a", count: 64), bytes: 1),
        busybox: ResolvedSource(kind: .tarball, path: "/bb.tar.bz2", sha256: String(repeating: "b", count: 64), bytes: 1))

    init() throws { project = try Project.load(root: repositoryRoot) }

    func plan(_ target: String, in project: Project? = nil) async throws -> MatrixPlan.CellPlan {
        let project = project ?? self.project
        let cell = try #require(project.cells.first { $0.target.name == target })
        let plan = try await MatrixPlan.make(project: project, cells: [cell], workspace: workspace, settings: RunSettings(jobs: 2), sources: sources)
        return try #require(plan.cells.first)
    }

    func step(_ plan: MatrixPlan.CellPlan, _ kind: StepKind) throws -> PlannedStep {
        try #require(plan.steps.first { $0.id.kind == kind })
    }

    @Test func everyCellHasEveryStepInOrder() async throws {
        let p = try await plan("arm64-virt")
        #expect(p.steps.map(\.id.kind) == [.sourceKernel, .kernelConfig, .kernelBuild, .sourceBusybox, .busyboxBuild, .rootfs, .dtbCheck, .boot])
        #expect(try step(p, .boot).dependencies.map(\.kind) == [.kernelBuild, .rootfs, .dtbCheck])
    }

    @Test func armBuildsZImageAndDTBOutOfTree() async throws {
        let p = try await plan("arm-vexpress-a9")
        let build = try step(p, .kernelBuild).commands[1].argv
        // The make carries the pool's size; the run's jobserver wrapper replaces -j when it executes.
        #expect(build.prefix(6) == ["make", "-C", "/cache/src/linux-aaaaaaaaaaaaaaaa", "O=/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/kernel",
                                    "ARCH=arm", "CROSS_COMPILE=arm-linux-gnueabihf-"])
        #expect(build.suffix(3) == ["-j2", "zImage", "dtbs"])
        // Boots name the images folder, where the run links the cached artifacts.
        let boot = try step(p, .boot).commands[0].argv
        #expect(boot.contains("/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/images/zImage"))
        #expect(boot.contains("/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/images/vexpress-v2p-ca9.dtb"))
        #expect(boot.contains("/cache/build/arm-vexpress-a9/gcc/tiny/initramfs/images/initramfs.cpio.gz"))
    }

    @Test func configMergesWithTheKernelsOwnScript() async throws {
        let commands = try step(try await plan("riscv64-virt"), .kernelConfig).commands.map(\.argv)
        #expect(commands[0].suffix(1) == ["tinyconfig"])
        #expect(commands[1][0] == "/cache/src/linux-aaaaaaaaaaaaaaaa/scripts/kconfig/merge_config.sh")
        #expect(commands[1][1...3] == ["-m", "-O", "/cache/build/riscv64-virt/gcc/tiny/initramfs/kernel"])
        #expect(commands[2].suffix(1) == ["olddefconfig"])
        #expect(commands[2].contains("ARCH=riscv") && commands[2].contains("CROSS_COMPILE=riscv64-linux-gnu-"))
    }

    @Test func qemuGeneratedDTBIsDumpedWithTheBootMachine() async throws {
        let dump = try step(try await plan("arm64-virt"), .dtbCheck).commands[0].argv
        #expect(dump.contains("virt,dumpdtb=/cache/build/arm64-virt/gcc/tiny/initramfs/images/qemu.dtb"))
        #expect(dump.contains("cortex-a57"))
    }

    @Test func busyboxIsSharedPerArchitectureAndToolchain() async throws {
        let p = try await plan("x86_64-pc")
        let busybox = try step(p, .busyboxBuild)
        #expect(busybox.id.scope == "amd64-gcc")
        let commands = busybox.commands.map(\.argv)
        #expect(commands[0] == ["make", "-C", "/cache/src/busybox-bbbbbbbbbbbbbbbb", "O=/cache/build/busybox/amd64-gcc",
                                "CROSS_COMPILE=x86_64-linux-gnu-", "defconfig"])
        #expect(commands.last?.contains("CONFIG_PREFIX=/cache/build/busybox/amd64-gcc/install") == true)
    }

    @Test func configNoteListsMatrixOptionsAndFragments() async throws {
        let p = try ScratchProject(); defer { p.remove() }
        try FileManager.default.createDirectory(atPath: "\(p.root)/Fragments", withIntermediateDirectories: true)
        try p.write("Fragments/debug.config", "CONFIG_PRINTK_TIME=y\n")
        try p.editJSON("matrix.json") { matrix in
            matrix["options"] = ["CONFIG_HZ_100=y"]
            matrix["fragments"] = ["Fragments/debug.config"]
        }
        let note = try step(try await plan("arm64-virt", in: try Project.load(root: p.root)), .kernelConfig).note ?? ""
        #expect(note.contains("CONFIG_HZ_100=y") && note.contains("CONFIG_PRINTK_TIME=y") && note.contains("CONFIG_SERIAL_AMBA_PL011=y"))
    }

    @Test func x86HasNoDeviceTree() async throws {
        let p = try await plan("x86_64-pc")
        #expect(try step(p, .dtbCheck).commands.isEmpty)
        #expect(!(try step(p, .boot).commands[0].argv.contains("-dtb")))
    }

    @Test func buildAndRootfsAreTheRunsGraphCutShort() async throws {
        let cell = try #require(project.cells.first { $0.target.name == "riscv64-virt" })
        var settings = RunSettings(jobs: 2)
        settings.goals = [.kernelBuild]
        let build = try await MatrixPlan.make(project: project, cells: [cell], workspace: workspace, settings: settings, sources: sources)
        #expect(build.cells[0].steps.map(\.id.kind) == [.sourceKernel, .kernelConfig, .kernelBuild])
        settings.goals = [.rootfs]
        let rootfs = try await MatrixPlan.make(project: project, cells: [cell], workspace: workspace, settings: settings, sources: sources)
        #expect(rootfs.cells[0].steps.map(\.id.kind) == [.sourceKernel, .kernelConfig, .kernelBuild, .sourceBusybox, .busyboxBuild, .rootfs])
    }
}
