import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build, check and boot every selected cell of the matrix, and report side by side.",
        discussion: """
            Steps are cached by their inputs: a rerun with nothing changed builds nothing and only \
            boots. All makes share one pool of --jobs slots (GNU make's jobserver). Writes a run \
            directory with results.json, junit.xml, report.md and report.html.
            Exit status: 0 every cell passed, 1 some cell failed, 2 bad input, 3 the host failed, \
            130 interrupted (the next run resumes from the cache).
            """)

    @OptionGroup var options: ProjectOptions
    @Option(help: "Job slots shared by every make (default: the number of cores).") var jobs: Int?
    @Flag(help: "Build and check only; boot nothing.") var noBoot = false
    @Flag(help: "Print the run's results.json on standard output (schema kmatrix-results/1); progress and the summary go to standard error.") var json = false
    @Flag(help: "Boot cells whose DTB check failed (the cell still fails).") var bootAnyway = false
    @Flag(help: "Add earlycon= to every boot's command line.") var earlycon = false
    @Flag(help: "Plain timestamped lines even on a terminal.") var plain = false
    @Option(help: ArgumentHelp("Write the run directory here instead of <cache>/runs (results, reports, every log): a self-contained result that `kmatrix merge` combines with others.", valueName: "dir"))
    var out: String?
    @OptionGroup var upstream: UpstreamCacheOption
    @OptionGroup var trials: BootTrialOptions
    @OptionGroup var tuxmake: TuxMakeOutputOption

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let forPeople = json ? try StandardOutputOnStandardError() : nil
        var settings = RunSettings(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        settings.boot = !noBoot
        settings.bootAnyway = bootAnyway
        settings.bootSettings.earlycon = earlycon
        trials.apply(to: &settings.bootSettings)
        settings.upstreamCache = upstream.path
        settings.ccache = upstream.ccache
        settings.distccHosts = upstream.distcc
        settings.live = !plain && Progress.stdoutIsTerminal
        settings.command = CommandLine.arguments
        settings.outputDirectory = try out.map(Self.outputDirectory)
        let run = MatrixRun(project: project, cells: cells, workspace: options.workspace, settings: settings)
        let finished = try await SignalScope.cancellingOnSignals { try await run.execute() }
        let results = finished.results
        print("")
        print(Reports.summaryTable(results))
        print("\n\(results.summary.passed) of \(results.summary.cells) cells passed in \(String(format: "%.1f", results.run.wallSeconds)) s "
              + "(CPU \(String(format: "%.0f", results.run.cpuSeconds)) s, floor \(String(format: "%.0f", results.run.floorSeconds)) s on \(results.run.cores) cores; "
              + "\(results.summary.cacheHits) of \(results.summary.steps) steps cached)")
        print("run directory: \(finished.directory) (report.html, report.md, results.json, junit.xml)")
        try await tuxmake.write(finished, options: options)
        // In a GitHub Actions step, each failed cell also becomes an annotation.
        if CIAnnotations.isGitHubActions() { CIAnnotations.github(results).forEach { print($0) } }
        if let forPeople { forPeople.end(); try printJSON(results) }
        if results.run.interrupted { throw ExitCode(130) }
        if finished.hostFailed { throw ExitCode(3) }
        if results.summary.failed > 0 { throw ExitCode(1) }
    }

    /// `--out`: absolute, and empty or new, so results of two runs never mix in one folder.
    static func outputDirectory(_ path: String) throws(KmatrixError) -> String {
        let directory = absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw .badInput("--out \(path): exists and is not a directory") }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).isEmpty else {
                throw .badInput("--out \(path): the directory is not empty (a run directory goes into an empty or new one)")
            }
        }
        return directory
    }
}
