import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

/// `kmatrix ci github|gitlab`: print a CI workflow that runs the selected cells as one job
/// each and merges their results (see `CIWorkflow`).
struct CICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ci",
        abstract: "Print a CI workflow that runs each selected cell as its own job and merges the results.",
        subcommands: [CIGitHub.self, CIGitLab.self])
}

/// What both workflows take: the cells (the usual selection) and where jobs run.
struct CIOptions: ParsableArguments {
    @OptionGroup var options: ProjectOptions

    func workflow(runner: String?) throws -> CIWorkflow {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        // The jobs run from the repository's root: the matrix is named as the user named it.
        var workflow = CIWorkflow(cells: cells.map(\.id), projectArguments: options.matrix.map { ["--matrix", $0] } ?? [],
                                  matrixName: project.matrix.file, runner: runner)
        workflow.selectedAll = cells.count == project.cells.count
        return workflow
    }
}

struct CIGitHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "github",
        abstract: "Print a GitHub Actions workflow: a strategy.matrix with one job per cell (256 per matrix, more jobs above that) and a merge job.")

    @OptionGroup var ci: CIOptions
    @Option(help: "The runs-on label of every job (default: self-hosted; the jobs need Debian 12 and Swift).") var runsOn: String?

    func run() async throws {
        print(try ci.workflow(runner: runsOn).github, terminator: "")
    }
}

struct CIGitLab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gitlab",
        abstract: "Print a GitLab CI pipeline: parallel:matrix with one job per cell (200 per job; a child pipeline above that) and a merge job with a JUnit report.")

    @OptionGroup var ci: CIOptions
    @Option(help: "A runner tag for every job.") var tag: String?
    @Flag(help: "Print the pipeline of cell jobs even above 200 cells (what the parent pipeline's generate job runs).") var child = false

    func run() async throws {
        let workflow = try ci.workflow(runner: tag)
        print(child ? workflow.gitlabCells : workflow.gitlab, terminator: "")
    }
}
