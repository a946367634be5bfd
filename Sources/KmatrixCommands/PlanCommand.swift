import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print, for each cell, every step with the exact commands `kmatrix run` would run (nothing is run).",
        discussion: """
            The steps are the ones `run` executes, asked for their commands: make with ARCH, \
            CROSS_COMPILE and O=, the busybox makes, mke2fs/debugfs for disk images, the QEMU \
            command line. With --json, each step also gives its cache key (when its inputs are \
            known) and whether the cache holds it.
            """)

    @OptionGroup var options: ProjectOptions
    @Option(help: "Job slots (default: the number of cores).") var jobs: Int?
    @Flag(help: "Plan without the boot steps, as run --no-boot would.") var noBoot = false
    @Flag(help: "Print JSON (schema kmatrix-plan/1).") var json = false

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        var settings = RunSettings(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        settings.boot = !noBoot
        let plan = try await MatrixPlan.make(project: project, cells: cells, workspace: options.workspace, settings: settings)
        if json { try printJSON(plan) } else { print(plan.text) }
    }
}
