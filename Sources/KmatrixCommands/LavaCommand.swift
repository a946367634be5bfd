import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler

/// `kmatrix lava`: the way to a LAVA lab (`job`, the default: the job definition of a cell)
/// and back (`import`: what LAVA produced, as the cell's run directory).
struct LavaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lava",
        abstract: "Send a cell to a LAVA lab (`kmatrix lava --cell ID` prints its job) and take its result back (`kmatrix lava import`).",
        subcommands: [LavaJobCommand.self, LavaImportCommand.self],
        defaultSubcommand: LavaJobCommand.self)
}

/// `kmatrix lava [job] --cell ID`: print a LAVA job definition that boots the cell's built
/// images in a LAVA lab (see `LavaJob`).
struct LavaJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Print a LAVA job definition (YAML) that boots one built cell: its kernel, DTB and initramfs as artifact URLs, the marker as the pass pattern.")

    @OptionGroup var options: ProjectOptions
    @Option(help: "Where the lab downloads the cell's files (BASE/zImage, BASE/initramfs.cpio.gz, ...); default: file:// URLs of the cached files.")
    var artifactURL: String?

    func run() async throws {
        if let base = artifactURL, URL(string: base)?.scheme == nil || base.contains(where: \.isWhitespace) {
            throw KmatrixError.badInput("--artifact-url '\(base)' is not a URL (https://host/path, file:///path)")
        }
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        guard cells.count == 1, let cell = cells.first else {
            throw KmatrixError.badInput("a LAVA job boots one cell; \(cells.count) cells are selected: pick one with --cell")
        }
        let images = try BootImages.forCell(cell, workspace: options.workspace)
        print(try LavaJob(cell: cell, images: images, artifactBase: artifactURL).render(), terminator: "")
    }
}

/// `kmatrix lava import --cell ID FOLDER --out DIR`: the cell's run directory, as `run --cell
/// ID --out DIR` writes it, from what LAVA produced for the cell's job (see `LavaImport`).
struct LavaImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn what LAVA produced for one cell's job into that cell's run directory, for `kmatrix merge`.",
        discussion: """
            FOLDER is lava-run's --output-dir (result.yaml, description.yaml) holding the job log as \
            output.yaml: lava-run prints the log on standard error (lava-run --output-dir FOLDER ... \
            2> FOLDER/output.yaml); a LAVA server keeps the same log as the job's output.yaml. The \
            files LAVA deployed must be the cell's (their sha256 in the log), so run it where the \
            cell was built. The verdict is kmatrix's console classifier on the log's console lines, \
            checked against LAVA's job result and its kmatrix_boot monitor: a job LAVA failed is \
            never a pass. Exit status: 0 the cell passed, 1 it failed, 2 bad input.
            """)

    @OptionGroup var options: ProjectOptions
    @Argument(help: ArgumentHelp("The LAVA job's output folder.", valueName: "folder")) var folder: String
    @Option(help: ArgumentHelp("Where the cell's run directory goes (empty or new).", valueName: "dir")) var out: String
    @Option(help: "The LAVA job id, recorded with the result.") var jobID: String?

    func run() async throws {
        let directory = try RunCommand.outputDirectory(out)
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        guard cells.count == 1, let cell = cells.first else {
            throw KmatrixError.badInput("a LAVA job boots one cell; \(cells.count) cells are selected: name it with --cell")
        }
        let folder = absolutePath(self.folder, relativeTo: FileManager.default.currentDirectoryPath)
        let imported = try LavaImport(project: project, cell: cell, workspace: options.workspace, folder: folder, jobID: jobID)
            .write(into: directory, command: CommandLine.arguments)
        let results = imported.results
        print(Reports.summaryTable(results))
        if let result = results.cells.first, let boot = result.boot, let lava = boot.lava {
            print("\n\(result.id): \(result.outcome.rawValue), booted by LAVA (\(lava.deviceType)\(lava.jobID.map { ", job \($0)" } ?? "")): "
                  + "LAVA job \(lava.job)\(lava.errorType.map { " (\($0))" } ?? ""), kmatrix_boot \(lava.monitor ?? "not recorded")")
        }
        print("run directory: \(directory) (report.html, report.md, results.json, junit.xml); merge it with kmatrix merge")
        if results.summary.failed > 0 { throw ExitCode(1) }
    }
}
