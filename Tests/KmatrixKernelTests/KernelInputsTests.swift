import Foundation
import KmatrixCore
@testable import KmatrixKernel
import KmatrixTestSupport
import Testing

@Suite("kernel config inputs and commands")
struct KernelInputsTests {
    let source = ResolvedSource(kind: .tarball, path: "/usr/src/linux.tar.xz", sha256: String(repeating: "a", count: 64), bytes: 1)
    let gcc = ToolchainIdentity(name: "gcc", compiler: "arm-linux-gnueabihf-gcc", version: "12.2.0")

    func cell(_ project: Project, _ target: String) throws -> Cell {
        try #require(project.cells.first { $0.target.name == target })
    }

    @Test func optionsComeFromEveryDescriptorInOrder() throws {
        let project = try Project.load(root: repositoryRoot)
        let inputs = try KernelConfigInputs.assemble(cell: try cell(project, "arm-vexpress-a9"), project: project, source: source, toolchain: gcc)
        let names = inputs.requested.map(\.option.name)
        let mmu = try #require(names.firstIndex(of: "CONFIG_MMU"))
        let vfp = try #require(names.firstIndex(of: "CONFIG_VFP"))
        let initrd = try #require(names.firstIndex(of: "CONFIG_BLK_DEV_INITRD"))
        let printk = try #require(names.firstIndex(of: "CONFIG_PRINTK"))
        #expect(mmu < vfp && vfp < initrd && initrd < printk)
        #expect(inputs.requested[mmu].origin.hasPrefix("target arm-vexpress-a9"))
        #expect(inputs.requested[vfp].origin.hasPrefix("userspace ABI armhf"))
        #expect(inputs.requested[printk].origin.hasPrefix("profile tiny"))
        #expect(inputs.base == .makeTarget("tinyconfig"))
        #expect(inputs.fragmentText.contains("\nCONFIG_MMU=y\n"))
        #expect(Set(names).count == names.count)
    }

    @Test func laterDescriptorsOverrideAndFragmentFilesAreRead() throws {
        let scratch = try ScratchProject()
        defer { scratch.remove() }
        try FileManager.default.createDirectory(atPath: "\(scratch.root)/Fragments", withIntermediateDirectories: true)
        try scratch.write("Fragments/quiet.config", "# no console for this profile\n# CONFIG_PRINTK is not set\nCONFIG_HZ_100=y\n")
        try scratch.editJSON("matrix.json") { matrix in
            var profiles = matrix["profiles"] as! [String: Any]
            var tiny = profiles["tiny"] as! [String: Any]
            tiny["fragments"] = ["Fragments/quiet.config"]
            profiles["tiny"] = tiny
            matrix["profiles"] = profiles
            var cells = matrix["cells"] as! [[String: Any]]
            cells[0]["options"] = ["CONFIG_HZ_100=n", "CONFIG_SERIAL_AMBA_PL011=m"]
            matrix["cells"] = cells
        }
        let project = try Project.load(root: scratch.root)
        let inputs = try KernelConfigInputs.assemble(cell: try cell(project, "arm-vexpress-a9"), project: project, source: source, toolchain: gcc)
        func request(_ name: String) -> RequestedOption? { inputs.requested.first { $0.option.name == name } }
        #expect(request("CONFIG_PRINTK")?.option.value == nil)
        #expect(request("CONFIG_PRINTK")?.origin == "profile tiny, fragment Fragments/quiet.config")
        #expect(request("CONFIG_HZ_100")?.option.value == nil)
        #expect(request("CONFIG_HZ_100")?.origin.hasPrefix("cell options") == true)
        #expect(request("CONFIG_SERIAL_AMBA_PL011")?.option.value == "m")
        #expect(inputs.fragmentText.contains("# CONFIG_PRINTK is not set\n"))
    }

    @Test func fingerprintFollowsWhatDecidesTheConfig() throws {
        let project = try Project.load(root: repositoryRoot)
        let arm = try cell(project, "arm-vexpress-a9")
        let inputs = try KernelConfigInputs.assemble(cell: arm, project: project, source: source, toolchain: gcc)
        var relabelled = inputs
        relabelled.requested = inputs.requested.map { RequestedOption($0.option, origin: "elsewhere") }
        #expect(relabelled.fingerprint == inputs.fingerprint)
        var newer = inputs
        newer.toolchain.version = "13.1.0"
        #expect(newer.fingerprint != inputs.fingerprint)
        var more = inputs
        more.requested.append(RequestedOption(KernelOption(name: "CONFIG_HZ_250", value: "y"), origin: "cell"))
        #expect(more.fingerprint != inputs.fingerprint)
        // The base config (what `make tinyconfig` writes) does not depend on the options,
        // so cells that differ only in them share it; everything else moves it.
        let base = try #require(inputs.baseFingerprint)
        #expect(more.baseFingerprint == base)
        #expect(base != inputs.fingerprint)
        #expect(newer.baseFingerprint != base)
        var otherSource = inputs
        otherSource.sourceSHA256 = "another tree"
        #expect(otherSource.baseFingerprint != base)
        var otherBase = inputs
        otherBase.base = .makeTarget("defconfig")
        #expect(otherBase.baseFingerprint != base)
        var otherVariables = inputs
        otherVariables.makeVariables["LLVM"] = "1"
        #expect(otherVariables.baseFingerprint != base)
        otherBase.base = .file(path: "/p/my.config", sha256: "x")
        #expect(otherBase.baseFingerprint == nil, "a file base is copied, never made")
        #expect(inputs.baseOnly.requested.isEmpty && inputs.baseOnly.baseFingerprint == base)
    }

    /// Every variable kmatrix sets for the kernel's makes is in both keys: changing any one
    /// (as pinning KBUILD_BUILD_VERSION did) moves the config key and the build key.
    @Test func theBuildEnvironmentIsInBothKeys() throws {
        let project = try Project.load(root: repositoryRoot)
        let arm = try cell(project, "arm-vexpress-a9")
        let config = try KernelConfigInputs.assemble(cell: arm, project: project, source: source, toolchain: gcc)
        let configuration = KernelConfiguration(inputsFingerprint: config.fingerprint, configPath: "/b/.config",
                                                configSHA256: String(repeating: "c", count: 64), requestedCount: 1,
                                                mismatches: [], hasModules: false, seconds: 0, log: "/b/config.log", failure: nil)
        let build = KernelBuildInputs(config: config, configuration: configuration, target: arm.target)
        let environment = KernelPlan.reproducibleEnvironment
        #expect(config.fingerprint == config.fingerprint(environment: environment))
        #expect(build.fingerprint == build.fingerprint(environment: environment))
        for name in environment.keys {
            var changed = environment
            changed[name] = "other"
            #expect(config.fingerprint(environment: changed) != config.fingerprint, "config key ignores \(name)")
            #expect(build.fingerprint(environment: changed) != build.fingerprint, "build key ignores \(name)")
        }
    }

    @Test func commandsStayOutOfTheSourceTreeAndTakeTheCallersEnvironment() throws {
        let project = try Project.load(root: repositoryRoot)
        let plan = KernelPlan(cell: try cell(project, "arm-vexpress-a9"), sourceTree: "/src/linux", buildDirectory: "/b/arm",
                              jobs: nil, ccache: "/usr/bin/ccache", environment: ["MAKEFLAGS": " -j2 --jobserver-auth=fifo:/tmp/js"])
        let commands = plan.configureCommands(base: .makeTarget("tinyconfig"))
        #expect(commands[1].workingDirectory == "/b/arm")
        #expect(commands[1].argv == ["/src/linux/scripts/kconfig/merge_config.sh", "-m", "-O", "/b/arm", "/b/arm/.config", "/b/arm/kmatrix.fragment"])
        let commands2 = plan.buildCommands(modules: true)
        #expect(commands2[0].argv.last == "syncconfig")
        let build = commands2[1]
        #expect(build.argv.suffix(3) == ["zImage", "dtbs", "modules"])
        #expect(!build.argv.contains { $0.hasPrefix("-j") })
        #expect(build.argv.contains("CC=/usr/bin/ccache arm-linux-gnueabihf-gcc"))
        #expect(build.environment["MAKEFLAGS"] == " -j2 --jobserver-auth=fifo:/tmp/js")
        #expect(build.environment["KBUILD_BUILD_TIMESTAMP"] != nil)
        #expect(commands2[2].argv.last == "INSTALL_MOD_PATH=/b/arm/modules-staging")
        #expect(plan.buildCommands(modules: false).count == 2)
        let fileBase = plan.configureCommands(base: .file(path: "/p/my.config", sha256: "x"))
        #expect(fileBase[0].argv == ["cp", "/p/my.config", "/b/arm/.config"])
        // A base config from the cache replaces the make target, writable; the rest is the same.
        let cachedBase = plan.configureCommands(base: .makeTarget("tinyconfig"), cachedBase: "/c/base/config")
        #expect(cachedBase[0].argv == ["install", "-m", "0644", "/c/base/config", "/b/arm/.config"])
        #expect(Array(cachedBase.dropFirst()) == Array(commands.dropFirst()))
        #expect(commands[0].argv.contains("tinyconfig"))
        #expect(plan.configureCommands(base: .file(path: "/p/my.config", sha256: "x"), cachedBase: "/c/base/config")[0].argv[0] == "cp")
    }
}
