import Foundation
import KmatrixCore

/// The steps of the selected cells as one graph, shared steps once: what `run` executes,
/// what `plan` renders, and what `build`, `rootfs` and `boot` run part of.
struct CellGraph: Sendable {
    /// Every step in the order they were added (cell by cell).
    private(set) var steps: [StepID: any Step] = [:]
    private(set) var order: [StepID] = []
    /// Each cell's steps, in its order.
    private(set) var cellSteps: [String: [StepID]] = [:]

    init(cells: [Cell], project: Project, settings: RunSettings) {
        for cell in cells {
            let build = StepID(.kernelBuild, cell.id), rootfs = StepID(.rootfs, cell.id), dtb = StepID(.dtbCheck, cell.id)
            // With --boot-anyway the boot waits for the check but does not need it to pass.
            let bootAfter = settings.bootAnyway ? [build, rootfs] : [build, rootfs, dtb]
            let all: [any Step] = [
                SourceStep(which: .kernel), KernelConfigStep(cell: cell), KernelBuildStep(cell: cell),
                SourceStep(which: .busybox), BusyboxStep(cell: cell, project: project), RootfsStep(cell: cell, project: project),
                DeviceTreeStep(cell: cell), BootStep(cell: cell, dependencies: bootAfter),
            ]
            // What the command asked for, and everything that needs.
            var wanted = Set(all.filter { settings.goals.contains($0.id.kind) }.map(\.id))
            var changed = true
            while changed {
                changed = false
                for step in all where wanted.contains(step.id) {
                    for dependency in step.dependencies where !wanted.contains(dependency) {
                        wanted.insert(dependency)
                        changed = true
                    }
                }
            }
            let mine = all.filter { wanted.contains($0.id) }
            cellSteps[cell.id] = mine.map(\.id)
            for step in mine where steps[step.id] == nil {
                steps[step.id] = step
                order.append(step.id)
            }
        }
    }

    /// The source steps in the graph (what must be resolved before it runs).
    var sourceKinds: Set<StepKind> { Set(order.map(\.kind).filter { $0 == .sourceKernel || $0 == .sourceBusybox }) }

    /// The runnable graph over `context`.
    func graph(_ context: StepContext) -> StepGraph {
        var graph = StepGraph()
        for id in order {
            guard let step = steps[id] else { continue }
            graph.add(StepNode(id, after: step.dependencies) { outcomes in
                await step.run(context, StepInputs(outcomes: outcomes))
            })
        }
        return graph
    }
}
