import Foundation
import Synchronization
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel
import KmatrixUserspace

/// Everything the steps of one plan or run share. `plan` builds one without a run
/// directory, jobserver or accelerator choice: it reads the cache, runs nothing.
struct StepContext: Sendable {
    let project: Project
    let workspace: Workspace
    let settings: RunSettings
    /// nil when planning.
    let runDirectory: String?
    /// The kernel sources by their step's scope (`linux`, `linux-6.12`).
    let kernelSources: [String: ResolvedSource]
    let busyboxSource: ResolvedSource?
    let jobserver: Jobserver?
    let cache: ArtifactCache
    /// A second cache read before building: a shared, read-only cache (a team's, a CI
    /// artifact store's, a test fixture's). Hits are served from it; nothing is written there.
    let upstreamWorkspace: Workspace?
    let accelerators: AcceleratorChoice?
    let ccache: String?
    let distcc: Distcc?
    let compilers: CompilerVersions
    /// Entries this plan or run has already found and verified.
    let verified = VerifiedEntries()

    var upstream: ArtifactCache? { upstreamWorkspace.map { ArtifactCache(root: $0.cache) } }

    /// The kernel source a cell builds.
    func kernelSource(_ cell: Cell) -> ResolvedSource? { kernelSources[cell.kernel.scope] }

    /// A step's log in the run directory (nil when planning).
    func logPath(_ id: StepID) -> String? {
        guard let runDirectory else { return nil }
        let dir = "\(runDirectory)/logs/\(id.kind.rawValue)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return "\(dir)/\(id.scope.replacingOccurrences(of: "/", with: "_")).log"
    }

    /// A published entry for `key`: this cache's, else the upstream one's.
    func lookup(_ kind: StepKind, _ key: String) -> String? {
        lookup(kind: kind.rawValue, key)
    }

    func lookup(kind: String, _ key: String) -> String? {
        if let entry = verified.entry(kind: kind, key: key) { return entry }
        guard let entry = cache.lookup(kind: kind, key: key) ?? upstream?.lookup(kind: kind, key: key) else { return nil }
        verified.add(entry, kind: kind, key: key)
        return entry
    }

    /// The tree a source step unpacks into (or the tree itself), known before it runs: an
    /// upstream cache's finished unpack of the same tarball is used read-only, like ours.
    func sourceTree(_ source: ResolvedSource?, name: String) -> String {
        guard let source else { return "\(workspace.root)/src/\(name)-<sha256>" }
        if source.kind == .tree { return source.path }
        let own = workspace.unpacked(name, sha256: source.sha256)
        if !SourceTree.isComplete(own), let upstream = upstreamWorkspace?.unpacked(name, sha256: source.sha256),
           SourceTree.isComplete(upstream) {
            return upstream
        }
        return own
    }

    /// The cell's kernel commands. Makes join the run's jobserver when they execute; the
    /// commands themselves (what is recorded and planned) carry `-j` with the pool's size.
    func kernelPlan(_ cell: Cell, tree: String) -> KernelPlan {
        KernelPlan(cell: cell, sourceTree: tree, buildDirectory: workspace.kernelBuild(cell), jobs: settings.jobs, ccache: ccache,
                   distcc: distcc)
    }

    func busyboxPlan(_ cell: Cell, tree: String) -> BusyboxPlan {
        var plan = BusyboxPlan(target: cell.target, toolchain: cell.toolchain, project: project, workspace: workspace,
                               sourceTree: tree, jobs: settings.jobs)
        plan.distcc = distcc
        return plan
    }

    /// How an executing make joins the pool.
    var wrap: @Sendable (Command) -> Command {
        guard let jobserver else { return { $0 } }
        return { jobserver.wrap($0) }
    }

    /// Runs `body` counted as a user of the pool: when the last one ends, the pool is
    /// refilled to its size, so tokens a killed make held are not lost.
    func inPool<T, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
        guard let jobserver else { return try await body() }
        jobserver.started()
        defer { jobserver.finished() }
        return try await body()
    }

    /// A failure of a step that wrote under `path`: a full filesystem is the host's fault.
    func classify(_ failure: FailureClass, path: String, text: String) -> (FailureClass, String?) {
        guard let full = DiskSpace.fullFilesystem(at: path, text: text) else { return (failure, nil) }
        return (.infrastructure, full)
    }

    /// The compiler identity of a cell's kernel toolchain, probed once per run.
    func toolchainIdentity(_ cell: Cell) async throws(KmatrixError) -> ToolchainIdentity {
        let compilers = compilers
        return try await ToolchainIdentity.probe(cell) { tool, arguments, packages throws(KmatrixError) in
            try await compilers.version(tool, arguments: arguments, packages: packages)
        }
    }

    /// Points `images/<name>` of the cell at `path` (a symlink replaced atomically):
    /// boots, `plan`, `kmatrix boot` and `shell` name the image there.
    @discardableResult
    func link(_ cell: Cell, _ path: String, as name: String) -> String {
        let folder = workspace.images(cell)
        let linked = "\(folder)/\(name)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: linked)) == path { return linked }
        let temporary = "\(folder)/.\(name).\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        if (try? FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: path)) != nil {
            rename(temporary, linked)
        }
        return linked
    }
}

/// The cache entries one plan or run has found and verified, by kind and key. Published
/// entries do not change, so each is verified once per plan or run, not once per cell
/// that reads it: `plan` of 1,000 cells looked the same busybox entry up (walking and
/// hashing its install tree) for every cell, 60 s in all. A miss is never remembered (the
/// entry may be published later in the run), and an entry that has gone since is looked
/// up again.
final class VerifiedEntries: Sendable {
    private let entries = Mutex<[String: String]>([:])

    func entry(kind: String, key: String) -> String? {
        guard let entry = entries.withLock({ $0["\(kind)/\(key)"] }) else { return nil }
        return FileManager.default.fileExists(atPath: entry) ? entry : nil
    }

    func add(_ entry: String, kind: String, key: String) {
        entries.withLock { $0["\(kind)/\(key)"] = entry }
    }
}

/// Compiler versions probed once per process and shared by every step that needs them.
actor CompilerVersions {
    private var known: [String: Result<String, KmatrixError>] = [:]

    func version(_ compiler: String, arguments: [String], packages: [String]) async throws(KmatrixError) -> String {
        let key = ([compiler] + arguments).joined(separator: " ")
        if let known = known[key] { return try known.get() }
        let result: Result<String, KmatrixError>
        do throws(KmatrixError) {
            result = .success(try await CompilerVersion.probe(compiler, arguments: arguments, packages: packages))
        } catch {
            result = .failure(error)
        }
        known[key] = result
        return try result.get()
    }
}

// MARK: - Small file helpers

func readJSON<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(T.self, from: data)
}

func writeJSON<T: Encodable>(_ value: T, _ path: String) -> Bool {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value).write(to: URL(fileURLWithPath: path))) != nil
}

func copyLog(_ source: String, to destination: String?) {
    guard let destination else { return }
    try? FileManager.default.removeItem(atPath: destination)
    try? FileManager.default.copyItem(atPath: source, toPath: destination)
}

func fileSize(_ path: String) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt64
}
