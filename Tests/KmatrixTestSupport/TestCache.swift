import Foundation
import KmatrixCore

/// The caches integration tests use. `shared` is the fixture cache that `Scripts/test`
/// fills with the end-to-end `kmatrix run` before the tests start (unpacked sources,
/// busybox installs, built cells, the probe kernel): tests read it and never write it.
/// A test that runs kmatrix or a build gets a `private` cache of its own, which may borrow
/// the shared sources (and, to skip rebuilding, the shared artifact cache entries).
public struct TestCache: Sendable {
    public let workspace: Workspace
    public var root: String { workspace.root }

    public init(root: String) { workspace = Workspace(root: root) }

    /// `Workspace.defaultRoot()`: honours `KMATRIX_CACHE`, `XDG_CACHE_HOME` and `HOME`.
    public static let shared = TestCache(root: Workspace.defaultRoot())

    /// The shipped project, as the fixture run saw it.
    public static let project: Project? = try? Project.load(root: repositoryRoot)

    /// The shipped matrix's sources, resolved once per test process (hashing the kernel
    /// tarball takes a moment): nil when the source itself is missing.
    static let kernelSource: ResolvedSource? = project.flatMap {
        try? SourceResolver.resolve($0.matrix.sources.kernel, what: "kernel", workspace: shared.workspace, file: $0.matrix.file)
    }
    static let busyboxSource: ResolvedSource? = project.flatMap {
        try? SourceResolver.resolve($0.matrix.sources.busybox, what: "busybox", workspace: shared.workspace, file: $0.matrix.file)
    }

    /// The kmatrix executable beside the test bundle (`swift build --build-tests` builds both).
    public static let kmatrixBinary: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kmatrix").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    // MARK: fixtures, each nil until the fixture run made it

    /// The unpacked kernel tree (`src/linux-<sha>` with its finished-unpack marker).
    public var unpackedKernel: String? { Self.kernelSource.flatMap { complete(workspace.unpacked("linux", sha256: $0.sha256)) } }
    /// The unpacked busybox tree.
    public var unpackedBusybox: String? { Self.busyboxSource.flatMap { complete(workspace.unpacked("busybox", sha256: $0.sha256)) } }

    /// A finished busybox install (`.../install`, holding `bin/busybox`) for one ABI.
    public func busyboxInstall(debianArch: String, toolchain: String = "gcc") -> String? {
        let install = "\(busyboxBuildDirectory(debianArch: debianArch, toolchain: toolchain))/install"
        return FileManager.default.isExecutableFile(atPath: "\(install)/bin/busybox") ? install : nil
    }
    public func busyboxBuildDirectory(debianArch: String, toolchain: String = "gcc") -> String {
        workspace.busyboxBuild(debianArch: debianArch, toolchain: toolchain)
    }

    /// Debian's x86_64 cloud kernel that Scripts/bootstrap fetches for the KVM probe.
    public var probeKernel: String? {
        let path = "\(root)/probe/vmlinuz"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// A built cell's kernel build directory (`make O=`), once its `vmlinux` exists.
    public func builtKernel(_ cell: Cell) -> String? {
        let build = workspace.kernelBuild(cell)
        return FileManager.default.fileExists(atPath: "\(build)/vmlinux") ? build : nil
    }

    /// A built cell's images folder, once it holds something.
    public func images(_ cell: Cell) -> String? {
        let folder = workspace.images(cell)
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty ? nil : folder
    }

    /// The cell of the shipped matrix with this target (and toolchain).
    public static func cell(target: String, toolchain: String = "gcc") -> Cell? {
        project?.cells.first { $0.target.name == target && $0.toolchain.name == toolchain }
    }

    private func complete(_ tree: String) -> String? { SourceTree.isComplete(tree) ? tree : nil }

    // MARK: private caches

    /// A fresh, empty cache for one test under the system's temporary folder. The test
    /// removes it (`remove()`), usually in a `defer`.
    public static func `private`(_ name: String) throws -> TestCache {
        let root = NSTemporaryDirectory() + "kmatrix-test-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return TestCache(root: root)
    }

    /// Links the shared cache's source tarballs and finished unpacked trees into this cache,
    /// so a run here does not unpack 1.3 GB again. The links point at read-only material:
    /// kmatrix builds out of tree (`O=`) and never writes into a finished unpack.
    public func linkSources(from shared: TestCache = .shared) throws {
        try link(shared, "sources") { _ in true }
        try link(shared, "src") { SourceTree.isComplete("\(shared.root)/src/\($0)") }
    }

    /// Links the shared cache's published artifact entries (configs, kernels, rootfs
    /// images) into this cache: a run here then builds only what the shared run did not.
    public func linkArtifacts(from shared: TestCache = .shared) throws {
        let fm = FileManager.default
        for kind in (try? fm.contentsOfDirectory(atPath: "\(shared.root)/cache")) ?? [] {
            try link(shared, "cache/\(kind)") { !$0.hasPrefix(".") }
        }
    }

    private func link(_ shared: TestCache, _ folder: String, where include: (String) -> Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        for name in (try? fm.contentsOfDirectory(atPath: "\(shared.root)/\(folder)")) ?? [] where include(name) && !name.hasSuffix(".lock") {
            try fm.createSymbolicLink(atPath: "\(root)/\(folder)/\(name)", withDestinationPath: "\(shared.root)/\(folder)/\(name)")
        }
    }

    /// Copies a folder of the shared cache into this one, keeping timestamps, so that
    /// make finds the copy up to date (a build the test may run again, but not from zero).
    public func copy(_ sharedPath: String, to path: String) async throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/cp")
        process.arguments = ["-a", sharedPath, path]
        try process.run()
        await process.exited()
        guard process.terminationStatus == 0 else { throw FixtureError(message: "cp -a \(sharedPath) \(path) failed") }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: root) }
}
