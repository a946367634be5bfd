import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixScheduler

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Configure, verify and build the kernel of every selected cell: the run's graph up to kernel.build.",
        discussion: """
            The same steps `kmatrix run` executes (and caches): each cell's config is checked \
            option by option against what the descriptors ask for; a cell whose config lost an \
            option fails as config-dropped-options and is not compiled. Artifacts (image, vmlinux, \
            System.map, config, DTBs, modules, logs and kernel.json) stay in the cache and are \
            linked into <cache>/build/<cell>/images; --output copies them to <output>/<cell>.
            """)

    @OptionGroup var options: ProjectOptions
    @OptionGroup var upstream: UpstreamCacheOption
    @Option(help: "Job slots shared by every make (default: the number of cores).") var jobs: Int?
    @Option(help: "Copy each cell's artifacts to this folder, one subfolder per cell.") var output: String?
    @Flag(help: "Plain timestamped lines even on a terminal.") var plain = false
    @Flag(help: "Print JSON (schema kmatrix-build/1; progress goes to standard error).") var json = false
    @OptionGroup var tuxmake: TuxMakeOutputOption

    /// `--json`: per cell what the table shows, with the kernel build record itself.
    struct Report: Encodable {
        struct CellBuild: Encodable {
            var cell: String
            var outcome: String
            var passed: Bool
            /// The kernel.build step came from the cache.
            var cacheHit: Bool
            /// The published entry (`kernel.artifacts.directory`), or the `--output` copy.
            var artifacts: String?
            /// The failing step's last log lines (empty when the cell passed).
            var excerpt: [String]
            /// kernel.json of the build, absent when no build was attempted.
            var kernel: KernelBuildRecord?
        }
        var cells: [CellBuild]
        var summary: RunResults.Summary
        /// Folders written by --tuxmake-dir.
        var tuxmake: [String]
    }

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() async throws {
        var settings = RunSettings(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        settings.goals = [.kernelBuild]
        settings.live = !plain && !json && Progress.stdoutIsTerminal
        settings.progressToStandardError = json
        let finished = try await runPart(options, settings, upstream: upstream)
        var rows: [[String]] = []
        var cells: [Report.CellBuild] = []
        for cell in finished.results.cells {
            let build = finished.outcomes[StepID(.kernelBuild, cell.id)]
            var record: KernelBuildRecord?
            if case .kernel(let made)? = build?.output { record = made }
            var place = record?.artifacts.directory ?? "-"
            if let output, let record, record.succeeded {
                place = try copyArtifacts(of: record, to: "\(absolutePath(output, relativeTo: FileManager.default.currentDirectoryPath))/\(cell.id)")
            }
            let result = cell.outcome == .pass ? (build?.cacheHit == true ? "built (cached)" : "built")
                : cell.outcome.rawValue + (cell.passed ? " (expected)" : "")
            rows.append([cell.id, result, record.map { String(format: "%.0f s", $0.buildSeconds) } ?? "-",
                         record?.imageBytes.map(byteCount) ?? "-", place])
            cells.append(.init(cell: cell.id, outcome: cell.outcome.rawValue, passed: cell.passed, cacheHit: build?.cacheHit == true,
                               artifacts: record == nil ? nil : place, excerpt: cell.passed ? [] : cell.excerpt, kernel: record))
            if !json { for line in cell.excerpt.prefix(cell.passed ? 0 : 12) { print("  \(cell.id) | \(line)") } }
        }
        if json {
            let written = try await tuxmake.write(finished, options: options, toStandardError: true)
            try printJSON(Report(cells: cells, summary: finished.results.summary, tuxmake: written), schema: "kmatrix-build/1")
        } else {
            print("")
            print(table(["cell", "result", "build", "image", "artifacts"], rows))
            try await tuxmake.write(finished, options: options)
        }
        try exitStatus(finished)
    }

    /// A plain copy of the published entry (entries are read-only and shared).
    func copyArtifacts(of record: KernelBuildRecord, to destination: String) throws -> String {
        let fm = FileManager.default
        try? fm.removeItem(atPath: destination)
        try fm.createDirectory(atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        do { try fm.copyItem(atPath: record.artifacts.directory, toPath: destination) } catch {
            throw KmatrixError.host("cannot copy \(record.artifacts.directory) to \(destination)", underlying: error)
        }
        return destination
    }
}

/// `--tuxmake-dir`: each built cell's kernel also written as TuxMake writes a build.
struct TuxMakeOutputOption: ParsableArguments {
    @Option(name: .customLong("tuxmake-dir"), help: "Also write each cell's kernel build as a TuxMake output directory: DIR/<cell id with / as ->/ (metadata.json, config, image, dtbs/, modules.tar.xz, build.log).")
    var directory: String?

    /// Writes the folders, saying so on stdout (stderr under --json); returns them.
    @discardableResult
    func write(_ finished: MatrixRun.Finished, options: ProjectOptions, toStandardError: Bool = false) async throws -> [String] {
        guard let directory else { return [] }
        let root = absolutePath(directory, relativeTo: FileManager.default.currentDirectoryPath)
        let cells = Dictionary(try options.load().cells.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var written: [String] = []
        for result in finished.results.cells {
            guard case .kernel(let record)? = finished.outcomes[StepID(.kernelBuild, result.id)]?.output, let cell = cells[result.id] else { continue }
            let folder = "\(root)/\(TuxMakeLayout.folderName(result.id))"
            let metadata = try await TuxMakeLayout.write(record, cell: cell, to: folder)
            let line = "tuxmake: \(folder) (\(metadata.results.status), \(metadata.results.artifacts.keys.sorted().joined(separator: ", ")))"
            if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
            written.append(folder)
        }
        return written
    }
}

/// `--cache-from`, for every command that runs (part of) the graph.
struct UpstreamCacheOption: ParsableArguments {
    @Option(name: .customLong("cache-from"), help: "A kmatrix cache folder to take results from, read-only, before building (a shared or CI cache).")
    var cacheFrom: String?
    @Flag(inversion: .prefixedNo, help: "Compile kernels through ccache, shared by every cell and run (off by default: on an empty ccache a cold build costs 30% more CPU, and kmatrix's own cache already serves every build whose inputs it has seen; see the README).")
    var ccache = false
    @Option(name: .customLong("distcc"), help: ArgumentHelp("Send the kernel's and busybox's compiles to these distcc hosts (DISTCC_HOSTS syntax, e.g. 'build1/8 build2/8'); preprocessing, host tools and links stay here. Not part of any cache key.", valueName: "HOSTS"))
    var distcc: String?

    var path: String? { cacheFrom.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) } }
}

/// Runs part of the run's graph (what `settings.goals` needs) for the selected cells,
/// stopping every child on a signal.
func runPart(_ options: ProjectOptions, _ settings: RunSettings, upstream: UpstreamCacheOption) async throws -> MatrixRun.Finished {
    let project = try options.load()
    let cells = try options.selectedCells(in: project)
    var settings = settings
    settings.command = CommandLine.arguments
    settings.upstreamCache = upstream.path
    settings.ccache = upstream.ccache
    settings.distccHosts = upstream.distcc
    let run = MatrixRun(project: project, cells: cells, workspace: options.workspace, settings: settings)
    return try await SignalScope.cancellingOnSignals { try await run.execute() }
}

/// 130 interrupted, 3 a host failure, 1 a cell failed (and was not expected to), else 0.
func exitStatus(_ finished: MatrixRun.Finished) throws {
    if finished.results.run.interrupted { throw ExitCode(130) }
    if finished.hostFailed { throw ExitCode(3) }
    if finished.results.summary.failed > 0 { throw ExitCode(1) }
}

func byteCount(_ bytes: UInt64) -> String {
    bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1048576) : String(format: "%.0f KiB", Double(bytes) / 1024)
}
