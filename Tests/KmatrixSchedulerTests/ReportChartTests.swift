import Foundation
import KmatrixCore
import KmatrixDeviceTree
@testable import KmatrixScheduler
import Testing

@Suite("Report charts and grouping")
struct ReportChartTests {
    /// Two kernels (named by the matrix, ending the cell id) for x86_64 and arm64, one toolchain.
    static func twoKernels() -> RunResults {
        var results = sampleResults()
        let template = results.cells[0]
        results.cells = ["6.1", "6.12"].flatMap { kernel in
            [("x86_64-pc", "x86_64"), ("arm64-virt", "arm64")].map { target, arch in
                var cell = template
                cell.id = "\(target)/gcc/tiny/initramfs/\(kernel)"
                cell.kernelName = kernel
                cell.target = target
                cell.arch = arch
                return cell
            }
        }
        return results
    }

    @Test func cellsGroupByKernelAndConfigAndByTarget() {
        let cells = Self.twoKernels().cells
        let byConfig = CellGrouping.byKernelAndConfig(cells)
        #expect(byConfig.map(\.title) == ["6.1, config tiny", "6.12, config tiny"])
        #expect(byConfig[0].cells.map(\.target) == ["x86_64-pc", "arm64-virt"])
        let byTarget = CellGrouping.byTarget(cells)
        #expect(byTarget.map(\.title) == ["x86_64-pc (x86_64)", "arm64-virt (arm64)"])
        #expect(byTarget[0].cells.map(\.kernelName) == ["6.1", "6.12"])
        // One unnamed kernel: the title is the config alone.
        #expect(CellGrouping.byKernelAndConfig(sampleResults().cells).map(\.title) == ["config tiny"])
    }

    @Test func phaseChartDrawsEverySeriesOnOneAxis() {
        let host = PhaseSeries(label: "x86 (host)", phases: [("first-output", 0.2), ("linux", 2.1), ("marker", 5.3)], end: 5.6)
        let kernel = PhaseSeries(label: "x86 (kernel clock)", phases: [("timer", 0.01), ("initramfs", 0.9), ("run-init", 1.4)])
        let failed = PhaseSeries(label: "arm <bad>", phases: [("linux", 12.0)], end: 30, failed: true)
        let svg = ReportSVG.phaseChart([("config tiny", [host, kernel]), ("other", [failed])])
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        // One rect per phase, one grey tail per series that outlived its last milestone, a legend swatch per name.
        let rects = svg.components(separatedBy: "<rect ").count - 1
        #expect(rects == (3 + 3 + 1) + 2 + 6)
        #expect(svg.contains(">config tiny</text>") && svg.contains(">other</text>"))
        #expect(svg.contains("arm &lt;bad&gt;"))
        // The axis reaches the longest series (30 s) in round steps.
        #expect(svg.contains(">30 s</text>"))
        #expect(!svg.contains("<script"))
        #expect(ReportSVG.tickStep(5.6) == 1 && ReportSVG.tickStep(30) == 5 && ReportSVG.tickStep(0.4) == 0.05)
    }

    @Test func reportHTMLGroupsTheTableAndDrawsBothViews() {
        let html = Reports.html(Self.twoKernels())
        #expect(html.contains("<tr class=\"group\"><th colspan=\"11\">6.1, config tiny</th></tr>"))
        #expect(html.contains("Boot phases: architectures side by side"))
        #expect(html.contains("Boot phases: toolchains and kernels side by side, per target"))
        // A matrix with one cell per target has nothing to put side by side per target.
        #expect(!Reports.html(sampleResults()).contains("per target"))
    }

    @Test func devicesNotNeededToBootCollapseIntoOneInfoLine() {
        var findings = (0..<3).map { DeviceTreeFinding(.info, .drivers, node: "/soc/dev@\($0)", compatibles: ["x,dev"], reason: DeviceTreeRules.notNeededToBoot.reason) }
        findings.append(DeviceTreeFinding(.warning, .memory, node: "/memory", reason: "QEMU replaces /memory"))
        let report = DeviceTreeReport(dtb: "/x/board.dtb", target: "board", console: "ttyAMA0", findings: findings)
        let summary = DeviceTreeSummary(report)
        #expect(summary.warnings == 1)
        #expect(summary.findings.map(\.severity) == ["warning", "info"])
        #expect(summary.findings[1].reason == "3 device(s) with no built-in driver (not needed to boot): /soc/dev@0, /soc/dev@1, /soc/dev@2")
        #expect(report.text.components(separatedBy: "not needed to boot").count - 1 == 1, "\(report.text)")
        #expect(report.text.contains("PASS: 0 error(s), 1 warning(s)"))
    }
}
