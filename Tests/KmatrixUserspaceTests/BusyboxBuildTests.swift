import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import KmatrixUserspace
import Testing

/// Busybox for every target's ABI with the gcc toolchain, built by the builder in a cache
/// of the test's own. The cache starts from a copy of the shared test cache's build for
/// that ABI (the fixture run made it), so the builder checks and reuses it in seconds
/// instead of a minute of compiling per architecture; a copy that no longer matches its
/// inputs is built again, here, never in the shared cache.
@Suite("busybox cross builds", .serialized)
struct BusyboxBuildTests {
    static let project = TestCache.project

    static func compilerPresent(_ debianArch: String) -> Bool {
        guard let gcc = project?.toolchains["gcc"], let arch = gcc.architectures[debianArch] else { return false }
        return ProcessRunner.which(gcc.compilerPath(for: arch)) != nil && ProcessRunner.which("make") != nil
    }

    static func target(for debianArch: String) -> Target? {
        project?.targets.values.sorted { $0.name < $1.name }.first { $0.userspace.debianArch == debianArch }
    }

    @Test("busybox is a static executable for the target's machine",
          .needs(tools: ["make"], .unpackedBusybox),
          .timeLimit(.minutes(20)),
          arguments: ["amd64", "armhf", "arm64", "riscv64"])
    func buildsStaticBusybox(debianArch: String) async throws {
        try #require(Self.compilerPresent(debianArch), "no gcc cross compiler for \(debianArch)")
        let project = try #require(Self.project)
        let cache = try TestCache.private("busybox-\(debianArch)")
        defer { cache.remove() }
        try cache.linkSources()
        if let shared = TestCache.shared.busyboxInstall(debianArch: debianArch) {
            try await cache.copy((shared as NSString).deletingLastPathComponent, to: cache.busyboxBuildDirectory(debianArch: debianArch))
        }
        let source = try SourceResolver.resolve(project.matrix.sources.busybox, what: "busybox", workspace: cache.workspace, file: project.matrix.file)
        let target = try #require(Self.target(for: debianArch))
        let tree = try await BusyboxBuilder.prepareSource(source, workspace: cache.workspace)
        let plan = BusyboxPlan(target: target, toolchain: try #require(project.toolchains["gcc"]), project: project,
                               workspace: cache.workspace, sourceTree: tree, jobs: 2)
        let record = try await BusyboxBuilder.build(plan, debianArch: debianArch, toolchain: "gcc", expect: target.userspace,
                                                    sourceSha256: source.sha256)
        print("busybox \(debianArch): \(record.reused ? "reused" : "built") in \(String(format: "%.1f", record.durationSeconds)) s (build took \(String(format: "%.1f", record.buildSeconds)) s), \(record.warnings.count) warnings")

        // The ELF header, read here independently of the builder's own check.
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: record.binary)).prefix(4096))
        #expect(Array(bytes[0..<4]) == [0x7f, 0x45, 0x4c, 0x46])
        let elf = try ELFHeader.parse(bytes, path: record.binary)
        #expect(elf.machine == target.userspace.elfMachine)
        #expect(elf.elfClass == target.userspace.elfClass)
        #expect(elf.isStatic, "no PT_INTERP: no dynamic loader needed")
        #expect(elf.type == 2, "ET_EXEC")
        let config = try String(contentsOfFile: "\(plan.buildDirectory)/.config", encoding: .utf8)
        #expect(config.contains("\nCONFIG_STATIC=y\n"))
        #expect(!config.contains("\nCONFIG_TC=y"))
        // make install laid out applet links.
        let sh = try FileManager.default.destinationOfSymbolicLink(atPath: "\(plan.installDirectory)/bin/sh")
        #expect(sh == "busybox")
        #expect(FileManager.default.fileExists(atPath: "\(plan.installDirectory)/sbin/mdev"))
    }

    @Test func missingBusyboxSourceIsAClearHostError() async throws {
        let scratch = NSTemporaryDirectory() + "kmatrix-nobusybox-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let spec = try JSONDecoder().decode(SourceSpec.self, from: Data(#"{"paths": ["{cache}/sources/busybox_9.9.9.orig.tar.bz2"], "debianSourcePackage": "busybox"}"#.utf8))
        let workspace = Workspace(root: scratch)
        let error = #expect(throws: KmatrixError.self) {
            _ = try SourceResolver.resolve(spec, what: "busybox", workspace: workspace, file: "matrix.json")
        }
        #expect(error?.kind == .hostFailure)
        #expect(error?.message.contains("busybox source is missing") == true)
        #expect(error?.message.contains("busybox_9.9.9.orig.tar.bz2") == true)

        // A source that resolved once but vanished before the unpack.
        let gone = ResolvedSource(kind: .tarball, path: "\(scratch)/gone.tar.bz2", sha256: String(repeating: "c", count: 64), bytes: 1)
        let unpack = await #expect(throws: KmatrixError.self) {
            _ = try await BusyboxBuilder.prepareSource(gone, workspace: workspace)
        }
        #expect(unpack?.kind == .hostFailure)
        #expect(unpack?.message.contains("gone.tar.bz2") == true)

        // A plan whose tree was never unpacked.
        let plan = BusyboxPlan(crossCompile: nil, sourceTree: "\(scratch)/src/busybox-none", buildDirectory: "\(scratch)/build",
                               installDirectory: "\(scratch)/install", jobs: 1)
        let build = await #expect(throws: KmatrixError.self) {
            _ = try await BusyboxBuilder.build(plan, debianArch: "amd64", toolchain: "gcc", expect: nil, sourceSha256: "x")
        }
        #expect(build?.message.contains("busybox source tree") == true)
    }

    @Test func configLinesKeepStaticAndNoTC() {
        let plan = BusyboxPlan(crossCompile: "x-", sourceTree: "/s", buildDirectory: "/b", installDirectory: "/i", jobs: 2,
                               options: ["CONFIG_STATIC=n", "CONFIG_FEATURE_EDITING=y", "# CONFIG_HUSH is not set"])
        #expect(plan.configLines == ["CONFIG_STATIC=y", "CONFIG_FEATURE_EDITING=y", "# CONFIG_HUSH is not set", "# CONFIG_TC is not set"])
        #expect(BusyboxPlan.optionName("# CONFIG_TC is not set") == "CONFIG_TC")
        #expect(BusyboxPlan.optionName("CONFIG_X=\"a=b\"") == "CONFIG_X")
        #expect(BusyboxPlan.optionName("junk") == nil)
    }

    /// A base other than defconfig is the first make's target and part of the build's key;
    /// the key of a defconfig build is the one it had before a base could be chosen.
    @Test func theBaseStartsTheConfigAndJoinsTheKey() {
        let defconfig = BusyboxPlan(crossCompile: "x-", sourceTree: "/s", buildDirectory: "/b", installDirectory: "/i", jobs: 2,
                                    options: ["CONFIG_ASH=y"])
        let minimal = BusyboxPlan(crossCompile: "x-", sourceTree: "/s", buildDirectory: "/b", installDirectory: "/i", jobs: 2,
                                  base: "allnoconfig", options: ["CONFIG_ASH=y"])
        #expect(defconfig.commands()[0].argv.last == "defconfig")
        #expect(minimal.commands()[0].argv.last == "allnoconfig")
        #expect(Array(minimal.commands().dropFirst()).map(\.argv) == Array(defconfig.commands().dropFirst()).map(\.argv))
        let hash = { (plan: BusyboxPlan) in BusyboxBuilder.inputsHash(plan, sourceSha256: "s", compilerVersion: "12.2.0", libc: "l") }
        #expect(hash(minimal) != hash(defconfig))
        let before = SHA256.hex((["busybox-build-v3", "s", "x-", "x-gcc", "12.2.0", "libc l"] + defconfig.configLines).joined(separator: "\n"))
        #expect(hash(defconfig) == before)
    }

    /// `--distcc`: every make of the build names `distcc <cross>gcc` as CC (the install too,
    /// or make would compile the objects again for their changed command) with the hosts in
    /// its environment, and the build's inputs, hence its key, stay those of a local build.
    @Test func distccChangesTheCommandsNotTheInputs() {
        var plan = BusyboxPlan(crossCompile: "aarch64-linux-gnu-", sourceTree: "/s", buildDirectory: "/b", installDirectory: "/i", jobs: 2)
        let local = plan.commands()
        let localHash = BusyboxBuilder.inputsHash(plan, sourceSha256: "s", compilerVersion: "12.2.0", libc: "l")
        plan.distcc = Distcc(executable: "/usr/bin/distcc", hosts: "10.0.0.2/4 10.0.0.3/4")
        let remote = plan.commands()
        #expect(remote.count == local.count)
        for (with, without) in zip(remote, local) {
            #expect(with.argv.filter { $0 != "CC=/usr/bin/distcc aarch64-linux-gnu-gcc" } == without.argv)
            #expect(with.argv.contains("CC=/usr/bin/distcc aarch64-linux-gnu-gcc"))
            #expect(with.environment["DISTCC_HOSTS"] == "10.0.0.2/4 10.0.0.3/4")
            #expect(without.environment["DISTCC_HOSTS"] == nil)
        }
        #expect(BusyboxBuilder.inputsHash(plan, sourceSha256: "s", compilerVersion: "12.2.0", libc: "l") == localHash)
    }
}
