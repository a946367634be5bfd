import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Re-render a run's junit.xml, report.md and report.html from its results.json.")

    @Argument(help: "A run directory (or its results.json).") var run: String
    @Option(help: "Where to write the reports (default: the run directory).") var output: String?
    @Flag(help: "Print the Markdown report.") var print = false

    func run() async throws {
        let results = try RunResults.load(from: run)
        let directory = output ?? (run.hasSuffix(".json") ? (run as NSString).deletingLastPathComponent : run)
        do { try Reports.write(results, to: directory) } catch {
            throw KmatrixError.host("cannot write the reports into \(directory)", underlying: error)
        }
        if print { Swift.print(Reports.markdown(results)) } else { Swift.print("reports written to \(directory): report.md report.html junit.xml") }
    }
}

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Classify each cell between two runs as kci-dev does (regression, fixed, unstable, persistent failure, new, missing) and show boot phases slower or faster beyond noise.",
        discussion: "Exits 1 when a cell regressed: it passed in the old run and fails in the new one. A flaky cell is unstable, not a regression.")

    @Argument(help: "The older run directory (or results.json).") var old: String
    @Argument(help: "The newer run directory (or results.json).") var new: String
    @Option(help: "Relative change a boot phase must exceed to count (default 0.2 = 20%).") var relative: Double = 0.2
    @Option(help: "Absolute change in seconds a boot phase must exceed to count.") var absolute: Double = 0.25
    @Flag(help: "Print JSON (schema kmatrix-compare/1).") var json = false

    func run() async throws {
        // Snapshots, not full results: a run from a newer kmatrix, with outcomes this one cannot name, still compares.
        let comparison = RunComparison(old: try RunSnapshot.load(from: old), new: try RunSnapshot.load(from: new),
                                       relative: relative, absolute: absolute)
        if json { try printJSON(comparison, schema: "kmatrix-compare/1") } else { print(comparison.text) }
        if comparison.regressed { throw ExitCode(1) }
    }
}

struct CleanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Empty kmatrix's cache, or part of it.",
        discussion: "Without options, removes cached step outputs, build directories and runs; unpacked sources and fetched tarballs stay unless --sources.")

    @Option(help: "kmatrix's cache folder (default: $KMATRIX_CACHE, else ~/.cache/kmatrix).") var cache: String?
    @Option(name: .customLong("kind"), help: "Only cached outputs of this step kind (kernel.build, busybox.build, rootfs...), repeatable.")
    var kinds: [String] = []
    @Option(name: .customLong("target"), help: "Only build directories of this target, repeatable.") var targets: [String] = []
    @Flag(help: "Also remove unpacked source trees.") var sources = false
    @Flag(help: "Only list what would be removed.") var dryRun = false

    func run() async throws {
        let workspace = Workspace(root: cache.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) } ?? Workspace.defaultRoot())
        let lock = try RunLock(directory: workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let fm = FileManager.default
        var doomed: [String] = []
        let store = ArtifactCache(root: workspace.cache)
        if !dryRun, kinds.isEmpty { store.sweepStaging() }
        for entry in store.entries() where kinds.isEmpty || kinds.contains(entry.kind) { doomed.append(entry.path) }
        if kinds.isEmpty {
            let builds = "\(workspace.root)/build"
            let names = (try? fm.contentsOfDirectory(atPath: builds)) ?? []
            doomed += names.filter { targets.isEmpty || targets.contains($0) }.map { "\(builds)/\($0)" }
            if targets.isEmpty { doomed.append(workspace.runs) }
            if sources { doomed.append("\(workspace.root)/src") }
        }
        doomed = doomed.filter { fm.fileExists(atPath: $0) }
        for path in doomed {
            print("\(dryRun ? "would remove" : "removing") \(path)")
            if !dryRun {
                // Published entries are read-only: made writable first.
                try TreePermissions.remove(path)
            }
        }
        if doomed.isEmpty { print("nothing to remove in \(workspace.root)") }
    }
}
