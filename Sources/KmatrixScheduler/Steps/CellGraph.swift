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
                SourceStep(which: .kernel(cell.kernel)), KernelConfigStep(cell: cell), KernelBuildStep(cell: cell),
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

    /// The sources the graph's steps read (what must be resolved before it runs): the
    /// kernels its cells build, and busybox when a step needs it.
    var sources: NeededSources {
        var kernels: [NamedKernel] = []
        for id in order where id.kind == .sourceKernel {
            if case .kernel(let kernel) = (steps[id] as? SourceStep)?.which { kernels.append(kernel) }
        }
        return NeededSources(kernels: kernels, busybox: order.contains { $0.kind == .sourceBusybox })
    }

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

/// What `MatrixRun.context` resolves: only the sources the command's steps use
/// (`kmatrix build` needs no busybox; a selection of 6.12 cells no 6.1 tarball).
struct NeededSources: Sendable {
    var kernels: [NamedKernel]
    var busybox: Bool
}
