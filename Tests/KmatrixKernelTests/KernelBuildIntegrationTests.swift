import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixTestSupport
import Testing

/// Real kernels from the real source with the real cross compilers. Each test builds in a
/// cache of its own that borrows the unpacked source of the shared test cache; the one
/// that compiles starts from a copy of the cell the fixture run built, so make only
/// catches up (ccache, in its default folder, is shared too).
@Suite("kernel builds (integration)", .serialized)
struct KernelBuildIntegrationTests {
    static let buildTools = ["make", "flex", "bison", "bc", "perl"]

    /// The project (possibly edited), one of its cells, the unpacked source and the cell's inputs.
    func prepare(_ project: Project, target: String, cache: TestCache) async throws -> (Cell, ResolvedSource, String, KernelConfigInputs) {
        let cell = try #require(project.cells.first { $0.target.name == target })
        let source = try SourceResolver.resolve(project.matrix.sources.kernel, what: "kernel", workspace: cache.workspace, file: project.matrix.file)
        let tree = try await SourceTree.prepare(source, workspace: cache.workspace)
        let inputs = try await KernelConfigInputs.resolve(cell: cell, project: project, source: source)
        return (cell, source, tree, inputs)
    }

    /// A private cache with the shared sources linked in.
    func privateCache(_ name: String) throws -> TestCache {
        let cache = try TestCache.private(name)
        try cache.linkSources()
        return cache
    }

    @Test("arm tinyconfig without CONFIG_MMU=y fails as config-dropped-options, without compiling",
          .needs(tools: buildTools + ["arm-linux-gnueabihf-gcc"], .unpackedKernel),
          .timeLimit(.minutes(20)))
    func armWithoutMMULosesOptions() async throws {
        let scratch = try ScratchProject()
        defer { scratch.remove() }
        try scratch.edit("Targets/arm-vexpress-a9.json", replacing: "\"CONFIG_MMU=y\", ", with: "")
        let project = try Project.load(root: scratch.root)
        let cache = try privateCache("arm-nommu")
        defer { cache.remove() }
        let (cell, source, tree, inputs) = try await prepare(project, target: "arm-vexpress-a9", cache: cache)
        #expect(!inputs.requested.contains { $0.option.name == "CONFIG_MMU" })

        let build = cache.workspace.kernelBuild(cell)
        let output = "\(build)-artifacts"
        let plan = KernelPlan(cell: cell, sourceTree: tree, buildDirectory: build, jobs: 2, ccache: ProcessRunner.which("ccache"))
        let configuration = try await KernelBuild.configure(plan, inputs: inputs)

        let failure = try #require(configuration.failure)
        #expect(failure.kind == .configDroppedOptions)
        let dropped = Set(configuration.mismatches.map(\.name))
        for name in ["CONFIG_ARCH_VEXPRESS", "CONFIG_SERIAL_AMBA_PL011", "CONFIG_SERIAL_AMBA_PL011_CONSOLE", "CONFIG_BINFMT_ELF"] {
            #expect(dropped.contains(name), "\(name) should have been dropped; dropped: \(dropped.sorted())")
        }
        // Only options that really came out differently are listed.
        let config = try KernelConfig(contentsOfFile: plan.configPath)
        for mismatch in configuration.mismatches {
            #expect(config.value(mismatch.name) == mismatch.actual)
            #expect(config.value(mismatch.name) != mismatch.requested)
        }
        #expect(failure.excerpt.contains { $0.hasPrefix("CONFIG_ARCH_VEXPRESS=y (from target arm-vexpress-a9") })

        let record = try await KernelBuild.build(plan, inputs: KernelBuildInputs(config: inputs, configuration: configuration, target: cell.target),
                                                 configuration: configuration, source: source, outputDirectory: output)
        #expect(record.failure?.kind == .configDroppedOptions)
        #expect(record.artifacts.image == nil)
        #expect(!FileManager.default.fileExists(atPath: "\(build)/vmlinux"), "nothing may be compiled from a rejected config")
        #expect(!FileManager.default.fileExists(atPath: "\(build)/build.log"))
        let json = try Data(contentsOf: URL(fileURLWithPath: "\(output)/kernel.json"))
        let decoded = try JSONDecoder().decode(KernelBuildRecord.self, from: json)
        #expect(decoded.mismatches.count == configuration.mismatches.count)
    }

    @Test("a base config make does not know fails as config-failed, with make's complaint in the excerpt",
          .needs(tools: buildTools + ["x86_64-linux-gnu-gcc"], .unpackedKernel),
          .timeLimit(.minutes(20)))
    func unknownBaseFailsTheConfigStep() async throws {
        let scratch = try ScratchProject()
        defer { scratch.remove() }
        try scratch.edit("matrix.json", replacing: "\"base\": \"tinyconfig\"", with: "\"base\": \"no_such_defconfig\"")
        let project = try Project.load(root: scratch.root)
        let cache = try privateCache("bad-base")
        defer { cache.remove() }
        let (cell, _, tree, inputs) = try await prepare(project, target: "x86_64-pc", cache: cache)
        let build = cache.workspace.kernelBuild(cell)
        let plan = KernelPlan(cell: cell, sourceTree: tree, buildDirectory: build, jobs: 1, ccache: nil)
        let configuration = try await KernelBuild.configure(plan, inputs: inputs)
        let failure = try #require(configuration.failure)
        #expect(failure.kind == .configFailed)
        #expect(failure.message.hasPrefix("make no_such_defconfig failed"))
        #expect(failure.excerpt.contains { $0.contains("no_such_defconfig") })
        #expect(configuration.configSHA256 == nil)
    }

    @Test("a riscv64 tinyconfig cell configures, verifies and builds with its artifacts",
          .needs(tools: buildTools + ["riscv64-linux-gnu-gcc"], .unpackedKernel, .builtKernel("riscv64-virt/gcc/tiny/initramfs")),
          .timeLimit(.minutes(40)))
    func riscv64Builds() async throws {
        let project = try Project.load(root: repositoryRoot)
        let cache = try privateCache("riscv64")
        defer { cache.remove() }
        let (cell, source, _, inputs) = try await prepare(project, target: "riscv64-virt", cache: cache)
        // The fixture run built this cell: make only catches up on a copy of its build
        // folder, from the same (shared, read-only) source path so no command changes.
        let tree = try #require(TestCache.shared.unpackedKernel)
        let build = cache.workspace.kernelBuild(cell)
        try await cache.copy(try #require(TestCache.shared.builtKernel(cell)), to: build)
        let output = "\(build)-artifacts"
        let plan = KernelPlan(cell: cell, sourceTree: tree, buildDirectory: build,
                              jobs: ProcessInfo.processInfo.activeProcessorCount, ccache: ProcessRunner.which("ccache"))
        // The base config `make tinyconfig` writes is handed over before anything is merged.
        let keptBase = "\(build)-base.config"
        let configuration = try await KernelBuild.configure(plan, inputs: inputs) { config in
            try? FileManager.default.copyItem(atPath: config, toPath: keptBase)
        }
        #expect(configuration.failure == nil, "\(configuration.failure?.description ?? "")")
        try #require(configuration.succeeded)
        let base = try String(contentsOfFile: keptBase, encoding: .utf8)
        #expect(base.contains("# CONFIG_FPU is not set"), "not the base: the fragment asks for CONFIG_FPU=y")
        // From that base (read-only, as the cache keeps it) instead of make tinyconfig: the same .config, byte for byte.
        chmod(keptBase, 0o444)
        let again = try await KernelBuild.configure(plan, inputs: inputs, cachedBase: keptBase)
        try #require(again.succeeded, "\(again.failure?.description ?? "")")
        #expect(again.configSHA256 == configuration.configSHA256)
        #expect(try String(contentsOfFile: again.log, encoding: .utf8).contains("$ install -m 0644 \(keptBase)"))

        let record = try await KernelBuild.build(plan, inputs: KernelBuildInputs(config: inputs, configuration: configuration, target: cell.target),
                                                 configuration: configuration, source: source, outputDirectory: output)
        #expect(record.failure == nil, "\(record.failure?.description ?? "")")
        #expect(record.errors == 0)
        #expect(record.toolchain.compiler == "riscv64-linux-gnu-gcc" && !record.toolchain.version.isEmpty)
        #expect(record.sourceSHA256 == source.sha256)
        #expect(record.configSHA256 == configuration.configSHA256)

        let fm = FileManager.default
        for path in [record.artifacts.image, record.artifacts.vmlinux, record.artifacts.systemMap, record.artifacts.config,
                     record.artifacts.buildLog, record.artifacts.configLog] {
            let path = try #require(path)
            #expect(fm.fileExists(atPath: path), "\(path) is missing")
        }
        // The image is a RISC-V Linux Image: "RISCV\0\0\0" at 0x30, and vmlinux an ELF for EM_RISCV (243).
        let image = try Data(contentsOf: URL(fileURLWithPath: try #require(record.artifacts.image)))
        #expect(record.imageBytes == UInt64(image.count))
        #expect(image.count > 0x40 && image[0x30..<0x35] == Data("RISCV".utf8))
        let vmlinux = try FileHandle(forReadingFrom: URL(fileURLWithPath: try #require(record.artifacts.vmlinux))).read(upToCount: 20) ?? Data()
        #expect(vmlinux.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]) && vmlinux.count == 20 && vmlinux[18] == 243)
        // The published config is the verified one, with what the cell asked for.
        let published = try KernelConfig(contentsOfFile: try #require(record.artifacts.config))
        #expect(ConfigVerification.mismatches(requested: inputs.requested, in: published).isEmpty)
        #expect(published.value("CONFIG_SERIAL_8250_CONSOLE") == "y")
        let decoded = try JSONDecoder().decode(KernelBuildRecord.self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/kernel.json")))
        #expect(decoded == record)
    }
}
