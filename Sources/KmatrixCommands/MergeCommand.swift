import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine run directories (from `run --out`, one per CI job or machine) into one run with its reports.",
        discussion: """
            Writes results.json, junit.xml, report.md and report.html as one run would, and copies \
            every input's logs in. Results of different matrices (their run.matrixDigest differs) \
            and a cell whose results differ between two inputs are bad input (exit 2), named. \
            Cells of the matrix that no input ran are listed. Exit status as run's: 0 every merged \
            cell passed, 1 some cell failed.
            """)

    @Argument(help: "Run directories (or their results.json).") var runs: [String]
    @Option(help: ArgumentHelp("Where the merged run directory goes (empty or new).", valueName: "dir")) var out: String

    func run() async throws {
        let directory = try RunCommand.outputDirectory(out)
        var inputs: [RunMerge.Input] = []
        var problems: [KmatrixError] = []
        for run in runs {
            do throws(KmatrixError) { inputs.append(try RunMerge.Input.load(run)) } catch { problems.append(error) }
        }
        if !problems.isEmpty { throw KmatrixErrors(problems) }
        let merged = try RunMerge.write(inputs, into: directory, command: CommandLine.arguments)
        let results = merged.results
        print(Reports.summaryTable(results))
        print("\n\(results.summary.passed) of \(results.summary.cells) cells passed, merged from \(inputs.count) run directories")
        if !merged.missing.isEmpty {
            print("not in any input (\(merged.missing.count) of the matrix's \(results.run.matrixCells?.count ?? 0) cells): \(merged.missing.joined(separator: ", "))")
        }
        print("run directory: \(directory) (report.html, report.md, results.json, junit.xml)")
        if results.summary.failed > 0 { throw ExitCode(1) }
    }
}
