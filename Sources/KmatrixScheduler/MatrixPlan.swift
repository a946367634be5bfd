import Foundation
import KmatrixCore

/// The kernel and busybox sources a plan names, when the caller resolved them (`kernel`
/// stands for every kernel of the matrix).
public struct PlanSources: Sendable {
    public var kernel: ResolvedSource?
    public var busybox: ResolvedSource?
    public init(kernel: ResolvedSource?, busybox: ResolvedSource?) {
        self.kernel = kernel
        self.busybox = busybox
    }
}

/// `kmatrix plan`: the run's step graph rendered instead of executed. Every step is the
/// same value `run` executes, asked for its commands; nothing is started (the cache and the
/// last KVM verdict are only read), and what cannot be known yet is said in the note.
public struct MatrixPlan: Sendable, Encodable {
    public static let schema = "kmatrix-plan/1"

    public struct CellPlan: Sendable, Encodable {
        public var cell: String
        /// The cell's steps in order, shared ones (sources, busybox) included.
        public var steps: [PlannedStep]
    }

    public var schema = MatrixPlan.schema
    public var cells: [CellPlan]

    /// `sources` replaces the matrix's source lookup (for tests and tools that already resolved them).
    public static func make(project: Project, cells: [Cell], workspace: Workspace, settings: RunSettings,
                            sources: PlanSources? = nil) async throws(KmatrixError) -> MatrixPlan {
        let graph = CellGraph(cells: cells, project: project, settings: settings)
        let context = try await MatrixRun.context(project: project, workspace: workspace, settings: settings, runDirectory: nil,
                                                  needs: graph.sources, sources: sources)
        var planned: [StepID: PlannedStep] = [:]
        for id in graph.order {
            guard let step = graph.steps[id] else { continue }
            planned[id] = await step.plan(context)
        }
        return MatrixPlan(cells: cells.map { cell in
            CellPlan(cell: cell.id, steps: (graph.cellSteps[cell.id] ?? []).compactMap { planned[$0] })
        })
    }

    public var text: String {
        var out: [String] = []
        for cell in cells {
            out.append("== \(cell.cell)")
            for step in cell.steps {
                let state = step.cached ? " (cached)" : ""
                out.append("  [\(step.id.kind.rawValue)]\(state)" + (step.note.map { " \($0)" } ?? ""))
                for command in step.commands { out.append("    $ \(command)") }
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }
}
