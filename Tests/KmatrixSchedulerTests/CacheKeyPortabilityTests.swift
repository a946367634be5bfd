import Foundation
import KmatrixCore
import KmatrixCrypto
@testable import KmatrixKernel
@testable import KmatrixScheduler
import KmatrixTestSupport
import KmatrixUserspace
import Testing

/// Cache keys travel: the same inputs give the same keys wherever the project, the cache,
/// the sources and the tools are, so entries exported on one machine are hits on another.
@Suite("Cache keys hold no host paths")
struct CacheKeyPortabilityTests {
    struct Place {
        var project: String
        var cache: String
        var kernelTarball: String
        var compilerPrefix: String
    }

    func keys(_ place: Place, compiler: String = "gcc") throws -> [String] {
        let project = try Project.load(root: place.project)
        var keys: [String] = []
        for cell in project.cells {
            let toolchain = ToolchainIdentity(name: cell.toolchain.name, compiler: "\(place.compilerPrefix)\(cell.toolchainArch.crossCompile ?? "")\(compiler)",
                                              version: "12.2.0", tools: ["assembler": "GNU assembler 2.40", "linker": "GNU ld 2.40"])
            let source = ResolvedSource(kind: .tarball, path: place.kernelTarball, sha256: String(repeating: "a", count: 64), bytes: 1)
            let config = try KernelConfigInputs.assemble(cell: cell, project: project, source: source, toolchain: toolchain)
            let configuration = KernelConfiguration(inputsFingerprint: config.fingerprint, configPath: "\(place.cache)/build/.config",
                                                    configSHA256: SHA256.hex("config of \(config.fingerprint)"), requestedCount: 1,
                                                    mismatches: [], hasModules: false, seconds: 0, log: "\(place.cache)/config.log", failure: nil)
            let build = KernelBuildInputs(config: config, configuration: configuration, target: cell.target)
            let workspace = Workspace(root: place.cache)
            let plan = BusyboxPlan(target: cell.target, toolchain: cell.toolchain, project: project, workspace: workspace,
                                   sourceTree: workspace.unpacked("busybox", sha256: String(repeating: "b", count: 64)), jobs: 2)
            let busybox = BusyboxBuilder.inputsHash(plan, sourceSha256: String(repeating: "b", count: 64), compilerVersion: "12.2.0",
                                                    libc: String(repeating: "c", count: 64))
            keys += [config.fingerprint, build.fingerprint, busybox]
        }
        return keys
    }

    @Test func theSameInputsInOtherFoldersGiveTheSameKeys() throws {
        let here = try ScratchProject(), there = try ScratchProject()
        defer { here.remove(); there.remove() }
        #expect(here.root != there.root)
        let a = try keys(Place(project: here.root, cache: "/root/.cache/kmatrix", kernelTarball: "/usr/src/linux-source-6.1.tar.xz",
                               compilerPrefix: ""))
        let b = try keys(Place(project: there.root, cache: "/builds/ci/job-17/cache", kernelTarball: "/builds/ci/job-17/linux.tar.xz",
                               compilerPrefix: ""))
        #expect(!a.isEmpty)
        #expect(a == b)
    }

    /// A compiler's identity is its version output: the same clang installed under another
    /// prefix keys the same; a different version does not.
    @Test func aCompilerIsKeyedByItsVersionNotItsPath() throws {
        let scratch = try ScratchProject()
        defer { scratch.remove() }
        let debian = try keys(Place(project: scratch.root, cache: "/c", kernelTarball: "/k", compilerPrefix: "/usr/lib/llvm-14/bin/"), compiler: "clang")
        let elsewhere = try keys(Place(project: scratch.root, cache: "/c", kernelTarball: "/k", compilerPrefix: "/opt/llvm/bin/"), compiler: "clang")
        #expect(debian == elsewhere)
        let cell = try #require(try Project.load(root: scratch.root).cells.first)
        let inputs = { (version: String) throws -> String in
            let toolchain = ToolchainIdentity(name: "llvm", compiler: "/usr/lib/llvm-14/bin/clang", version: version)
            return try KernelConfigInputs.assemble(cell: cell, project: try Project.load(root: scratch.root),
                                                   source: ResolvedSource(kind: .tarball, path: "/k", sha256: "a", bytes: 1),
                                                   toolchain: toolchain).fingerprint
        }
        #expect(try inputs("Debian clang version 14.0.6") != inputs("Debian clang version 15.0.7"))
    }
}
