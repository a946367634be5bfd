import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixScheduler
import Testing

/// A run over two kernels reads as one row per target, each kernel's columns beside the other's.
@Suite("Kernels side by side")
struct KernelSideBySideTests {
    func results() -> RunResults {
        let base = sampleResults()
        var cells: [CellResult] = []
        for (kernel, bytes) in [("6.1", UInt64(1_200_000)), ("6.12", UInt64(1_400_000))] {
            for var cell in base.cells {
                cell.id += "/\(kernel)"
                cell.kernelName = kernel
                cell.kernel?.imageBytes = bytes
                if kernel == "6.12", cell.target == "arm-vexpress-a9" { cell.outcome = .failed(.buildFailed) }
                cells.append(cell)
            }
        }
        return RunResults(run: base.run, cells: cells, steps: base.steps)
    }

    @Test func oneRowPerTargetWithEachKernelsColumns() {
        let (kernels, rows) = KernelSideBySide.rows(results())
        #expect(kernels == ["6.1", "6.12"])
        #expect(rows.map(\.first) == ["x86_64-pc/gcc/tiny/initramfs", "arm-vexpress-a9/gcc/tiny/initramfs"])
        #expect(rows[0] == ["x86_64-pc/gcc/tiny/initramfs", "pass", "1.20 MB", "1.50 s", "pass", "1.40 MB", "1.50 s"])
        #expect(rows[1][4] == "build-failed")
        let markdown = Reports.markdown(results())
        #expect(markdown.contains("## Kernels side by side"))
        #expect(markdown.contains("| cell | 6.1: outcome | 6.1: image | 6.1: boot | 6.12: outcome |"))
    }

    @Test func aRunWithOneKernelHasNoSuchSection() {
        #expect(KernelSideBySide.rows(sampleResults()).kernels.isEmpty)
        #expect(!Reports.markdown(sampleResults()).contains("Kernels side by side"))
    }

    /// A kernel compiled in this run shows how much ccache served; a cached one says so.
    @Test func theBuildColumnShowsCcacheHitsOfACompiledKernel() {
        var results = sampleResults()
        let id = results.cells[0].id
        results.cells[0].kernel?.ccache = CcacheStats(calls: 700, hits: 610, misses: 60)
        results.steps = [StepResult(id: StepID(.kernelBuild, id), outcome: StepOutcome(status: .passed, cacheHit: false, seconds: 95, summary: "bzImage"))]
        #expect(Reports.markdown(results).contains("| \(id) | **pass** | 95.00 s, ccache 610/670 |"))
    }
}
