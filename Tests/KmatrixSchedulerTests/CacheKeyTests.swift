import Foundation
import KmatrixCore
import KmatrixCrypto
@testable import KmatrixKernel
@testable import KmatrixScheduler
import KmatrixTestSupport
import KmatrixUserspace
import Testing

/// Every input that can change an output is part of its step's key, and only of the keys
/// of the steps that depend on it: each input is changed in turn and the four cached
/// steps' keys, and the kept base config's, compared with the unchanged ones.
@Suite("Cache keys hold every input")
struct CacheKeyTests {
    struct Inputs {
        var compiler = "12.2.0"
        var tools = ["assembler": "GNU assembler 2.40", "linker": "GNU ld 2.40", "pahole": "absent"]
        var libc = String(repeating: "c", count: 64)
        var imageTool = "mke2fs 1.47.0 (5-Feb-2023)"
    }

    struct Keys: Equatable {
        var config, build, busybox, rootfs: String
        /// The base make target's `.config` (`KernelConfigInputs.baseFingerprint`).
        var base: String?
    }


    func keys(_ project: Project, _ inputs: Inputs = Inputs(), source: Character = "a") throws -> Keys {
        let cell = try #require(project.cells.first { $0.target.name == "riscv64-virt" })
        let toolchain = ToolchainIdentity(name: "gcc", compiler: "riscv64-linux-gnu-gcc", version: inputs.compiler, tools: inputs.tools)
        let identity = ResolvedSource(kind: .tarball, path: "/src.tar.xz", sha256: String(repeating: source, count: 64), bytes: 1)
        let config = try KernelConfigInputs.assemble(cell: cell, project: project, source: identity, toolchain: toolchain)
        // The verified .config follows from its inputs: stand in for it with their hash.
        let configuration = KernelConfiguration(inputsFingerprint: config.fingerprint, configPath: "/b/.config",
                                                configSHA256: SHA256.hex("config of \(config.fingerprint)"), requestedCount: 1,
                                                mismatches: [], hasModules: false, seconds: 0, log: "/b/config.log", failure: nil)
        let build = KernelBuildInputs(config: config, configuration: configuration, target: cell.target)
        let plan = BusyboxPlan(target: cell.target, toolchain: cell.toolchain, project: project, workspace: Workspace(root: "/c"),
                               sourceTree: "/c/src/busybox", jobs: 2)
        let busybox = BusyboxBuilder.inputsHash(plan, sourceSha256: String(repeating: "b", count: 64), compilerVersion: "12.2.0",
                                                libc: inputs.libc)
        let rootfs = try ArtifactCache.key(RootfsStep.Inputs(busybox: busybox, kind: cell.rootDevice.kind.rawValue,
                                                             filesystem: cell.rootDevice.filesystem, console: cell.target.console.device,
                                                             consoleNode: cell.target.console.node, initMode: "unattended",
                                                             imageTool: inputs.imageTool))
        return Keys(config: config.fingerprint, build: build.fingerprint, busybox: busybox, rootfs: rootfs, base: config.baseFingerprint)
    }

    /// Which of the four keys differ.
    func changed(_ a: Keys, _ b: Keys) -> Set<String> {
        var out: Set<String> = []
        if a.config != b.config { out.insert("config") }
        if a.build != b.build { out.insert("build") }
        if a.busybox != b.busybox { out.insert("busybox") }
        if a.rootfs != b.rootfs { out.insert("rootfs") }
        if a.base != b.base { out.insert("base") }
        return out
    }

    @Test func eachInputChangesExactlyTheKeysThatDependOnIt() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        let project = try Project.load(root: scratch.root)
        let base = try keys(project)
        #expect(try keys(project) == base, "keys are stable")

        var inputs = Inputs()
        #expect(base.base != nil, "tinyconfig is a make target: its .config is kept")
        inputs.compiler = "12.3.0"
        #expect(changed(base, try keys(project, inputs)) == ["config", "build", "base"])
        for (role, version) in [("assembler", "GNU assembler 2.41"), ("linker", "GNU ld 2.41"), ("pahole", "v1.24")] {
            inputs = Inputs()
            inputs.tools[role] = version
            #expect(changed(base, try keys(project, inputs)) == ["config", "build", "base"], "\(role)")
        }
        inputs = Inputs()
        inputs.libc = String(repeating: "d", count: 64)
        #expect(changed(base, try keys(project, inputs)) == ["busybox", "rootfs"])
        inputs = Inputs()
        inputs.imageTool = "mke2fs 1.47.1 (20-May-2024)"
        #expect(changed(base, try keys(project, inputs)) == ["rootfs"])
        // The kernel source's identity (a tarball's sha256, a tree's HEAD and diff).
        #expect(try keys(project, Inputs(), source: "e") != base)
        #expect(changed(base, try keys(project, Inputs(), source: "e")) == ["config", "build", "base"])

        // A make variable set through a descriptor (the build sees no other environment).
        try scratch.editJSON("matrix.json") { matrix in
            var profiles = matrix["profiles"] as! [String: Any]
            var tiny = profiles["tiny"] as! [String: Any]
            tiny["makeVariables"] = ["KCFLAGS": "-O1"]
            profiles["tiny"] = tiny
            matrix["profiles"] = profiles
        }
        #expect(changed(base, try keys(try Project.load(root: scratch.root))) == ["config", "build", "base"])

        // A fragment file's bytes: options, which the kept base config does not depend on.
        let fresh = try ScratchProject(); defer { fresh.remove() }
        try FileManager.default.createDirectory(atPath: "\(fresh.root)/Fragments", withIntermediateDirectories: true)
        try fresh.write("Fragments/extra.config", "CONFIG_PRINTK_TIME=y\n")
        try fresh.editJSON("matrix.json") { $0["fragments"] = ["Fragments/extra.config"] }
        let withFragment = try keys(try Project.load(root: fresh.root))
        try fresh.write("Fragments/extra.config", "# CONFIG_PRINTK_TIME is not set\n")
        #expect(changed(withFragment, try keys(try Project.load(root: fresh.root))) == ["config", "build"])

        // Targets fields: the console reaches only the rootfs, the image target only the build.
        let target = try ScratchProject(); defer { target.remove() }
        try target.edit("Targets/riscv64-virt.json", replacing: "\"device\": \"ttyS0\"", with: "\"device\": \"ttyS1\"")
        #expect(changed(base, try keys(try Project.load(root: target.root))) == ["rootfs"])
        let image = try ScratchProject(); defer { image.remove() }
        try image.edit("Targets/riscv64-virt.json", replacing: "\"target\": \"Image\"", with: "\"target\": \"Image.gz\"")
        #expect(changed(base, try keys(try Project.load(root: image.root))) == ["build"])
        // Where the image is looked for decides what is published: the build's key.
        let path = try ScratchProject(); defer { path.remove() }
        try path.edit("Targets/riscv64-virt.json", replacing: "\"paths\": [\"arch/riscv/boot/Image\"]",
                      with: "\"paths\": [\"arch/riscv/boot/Image\", \"Image\"]")
        #expect(changed(base, try keys(try Project.load(root: path.root))) == ["build"])
        // The board's defconfig reaches only profiles based on it: not tinyconfig's keys...
        let defconfig = try ScratchProject(); defer { defconfig.remove() }
        try defconfig.edit("Targets/riscv64-virt.json", replacing: "\"defconfig\": \"defconfig\"", with: "\"defconfig\": \"nommu_virt_defconfig\"")
        #expect(changed(base, try keys(try Project.load(root: defconfig.root))) == [])
        // ...but a defconfig profile's config and build.
        try defconfig.editJSON("matrix.json") { matrix in
            var profiles = matrix["profiles"] as! [String: Any]
            var tiny = profiles["tiny"] as! [String: Any]
            tiny["base"] = "defconfig"
            profiles["tiny"] = tiny
            matrix["profiles"] = profiles
        }
        let own = try keys(try Project.load(root: defconfig.root))
        try defconfig.edit("Targets/riscv64-virt.json", replacing: "\"nommu_virt_defconfig\"", with: "\"defconfig\"")
        #expect(changed(own, try keys(try Project.load(root: defconfig.root))) == ["config", "build", "base"])
    }

    /// The rootfs key holds the content of what goes in: an overlay file edited to other
    /// bytes of the same size is a new image (a listing of paths and sizes missed it).
    @Test func anOverlayEditOfTheSameSizeChangesTheRootfsKey() throws {
        let root = NSTemporaryDirectory() + "kmatrix-rootfs-key-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/install/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/overlay/etc", withIntermediateDirectories: true)
        fm.createFile(atPath: "\(root)/install/bin/busybox", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        func key() throws -> String {
            let tree = try Rootfs.assemble(RootfsOptions(busyboxInstall: "\(root)/install", rootDevice: .initramfs, overlay: "\(root)/overlay"))
            return try tree.digest()
        }
        try Data("one\n".utf8).write(to: URL(fileURLWithPath: "\(root)/overlay/etc/motd"))
        let first = try key()
        #expect(try key() == first)
        try Data("two\n".utf8).write(to: URL(fileURLWithPath: "\(root)/overlay/etc/motd"))
        #expect(try key() != first)
    }
}
