import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix plan` lists, for every cell of both shipped matrices, exactly the commands
/// the last `kmatrix run` of that matrix executed (argument for argument, environment and
/// working directory included), read from the run's step records. Scripts/test runs the
/// default matrix and the root-device cells the tests use before the tests, so the fixture
/// cache holds those runs; the cells a run covered are compared.
@Suite("plan equals run")
struct PlanEqualsRunTests {
    static let cache = FixtureCommands.shared
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// The newest complete run of `matrix` (one that booted) in the fixture cache.
    static func lastRun(of matrix: String) -> RunResults? {
        FixtureCommands.lastRun(matrix) { $0.steps.contains { $0.kind == .boot } }
    }

    static let reason: Comment = "needs a finished `kmatrix run` of the matrix in the cache (Scripts/test makes them)"

    @Test(.enabled(if: lastRun(of: "matrix.json") != nil || isCI, reason))
    func defaultMatrix() async throws { try await compare("matrix.json", everyCell: true) }

    @Test(.enabled(if: lastRun(of: "Matrices/root-devices.json") != nil || isCI, reason))
    func rootDevicesMatrix() async throws { try await compare("Matrices/root-devices.json") }

    func compare(_ matrix: String, everyCell: Bool = false) async throws {
        let run = try #require(Self.lastRun(of: matrix), "no finished run of \(matrix) in \(Self.cache.runs)")
        let project = try Project.load(root: repositoryRoot, matrixFile: matrix == "matrix.json" ? nil : matrix)
        let cells = project.cells.filter { cell in run.cells.contains { $0.id == cell.id } }
        if everyCell { #expect(cells.count == project.cells.count, "the run covered every cell of \(matrix)") }
        try #require(!cells.isEmpty, "the run of \(matrix) covered none of its cells")
        let plan = try await MatrixPlan.make(project: project, cells: cells, workspace: Self.cache, settings: RunSettings(jobs: run.run.jobs))
        var compared = 0
        for cellPlan in plan.cells {
            for planned in cellPlan.steps {
                let executed = try #require(run.steps.first { $0.id == planned.id }, "\(planned.id) is not in the run of \(matrix)")
                #expect(executed.commands == planned.commands, "\(planned.id): plan and run differ")
                if executed.commands != planned.commands {
                    for (a, b) in zip(executed.commands, planned.commands) where a != b {
                        Issue.record("run:  \(a)\nplan: \(b)")
                    }
                }
                compared += planned.commands.count
            }
        }
        // Every cell runs at least its config makes and a boot.
        #expect(compared >= cells.count * 4)
    }
}
