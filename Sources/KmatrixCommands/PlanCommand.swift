import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print, for each cell, the exact commands it would run (derived from the descriptors, nothing run).")

    @OptionGroup var options: ProjectOptions
    @Option(help: "make -j value (default: the number of cores).") var jobs: Int?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let workspace = options.workspace
        let kernel = try? SourceResolver.resolve(project.matrix.sources.kernel, what: "kernel", workspace: workspace, file: project.matrix.file)
        let busybox = try? SourceResolver.resolve(project.matrix.sources.busybox, what: "busybox", workspace: workspace, file: project.matrix.file)
        let jobs = self.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let ccache = ProcessRunner.which("ccache")
        let plans = cells.map {
            CellPlan(cell: $0, project: project, workspace: workspace, jobs: jobs, ccache: ccache, kernelSource: kernel, busyboxSource: busybox)
        }
        if json { return try printJSON(plans) }
        for plan in plans {
            print("== \(plan.cell)")
            for step in plan.steps {
                print("  [\(step.name)]" + (step.note.map { " \($0)" } ?? ""))
                for command in step.commands { print("    $ \(command)") }
            }
            print("")
        }
    }
}
