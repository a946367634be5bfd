import Foundation

/// How the reports put cells side by side: the same kernel and config on different
/// architectures together, and the same target on different kernels or toolchains.
extension CellResult {
    /// The kernel axis: the matrix's name for the cell's kernel, `linux` when it has one.
    var kernelAxis: String { kernelName ?? "linux" }
}

enum CellGrouping {
    typealias Group = (title: String, cells: [CellResult])

    /// Cells grouped by `key`, groups and cells in the order they first appear.
    static func group(_ cells: [CellResult], by key: (CellResult) -> String) -> [Group] {
        var order: [String] = []
        var members: [String: [CellResult]] = [:]
        for cell in cells {
            let name = key(cell)
            if members[name] == nil { order.append(name) }
            members[name, default: []].append(cell)
        }
        return order.map { ($0, members[$0] ?? []) }
    }

    /// Architectures side by side: one group per kernel and config profile.
    static func byKernelAndConfig(_ cells: [CellResult]) -> [Group] {
        let kernels = Set(cells.map(\.kernelAxis))
        return group(cells) { cell in
            kernels.count > 1 ? "\(cell.kernelAxis), config \(cell.profile)" : "config \(cell.profile)"
        }
    }

    /// Toolchains, kernels and root devices side by side: one group per target.
    static func byTarget(_ cells: [CellResult]) -> [Group] {
        group(cells) { "\($0.target) (\($0.arch))" }
    }

    /// The label of a cell inside a group of `byKernelAndConfig`: what differs there.
    static func labelInConfigGroup(_ cell: CellResult) -> String { "\(cell.target)/\(cell.toolchain)/\(cell.rootfs)" }

    /// The label inside a group of `byTarget`.
    static func labelInTargetGroup(_ cell: CellResult, kernels: Int) -> String {
        (kernels > 1 ? "\(cell.kernelAxis) " : "") + "\(cell.toolchain)/\(cell.profile)/\(cell.rootfs)"
    }
}

extension Reports {
    /// A cell's bars: QEMU's clock (host phases); the kernel's own clock joins as a second
    /// row when the boot record carries printk-timestamped phases.
    static func phaseRows(_ cell: CellResult, label: String) -> [PhaseSeries] {
        guard let boot = cell.boot else { return [] }
        let failed = !cell.passed
        var rows = [PhaseSeries(label: "\(label) (host)", phases: boot.phases.map { ($0.name, $0.seconds) }, end: boot.seconds, failed: failed)]
        let kernelClock = kernelClockPhases(boot)
        if !kernelClock.isEmpty { rows.append(PhaseSeries(label: "\(label) (kernel clock)", phases: kernelClock, failed: failed)) }
        return rows
    }

    /// Milestones on the kernel's clock (printk timestamps), when the boot recorded them.
    /// The boot-verdict work adds them to `BootSummary`; until then there are none.
    static func kernelClockPhases(_ boot: BootSummary) -> [(name: String, seconds: Double)] { boot.kernelPhases?.map { ($0.name, $0.seconds) } ?? [] }

    /// The phase charts of report.html: architectures side by side per kernel and config,
    /// then (when some target has several cells) kernels and toolchains side by side per target.
    static func phaseCharts(_ results: RunResults) -> String {
        let booted = results.cells.filter { $0.boot != nil }
        guard !booted.isEmpty else { return "<p>No boots.</p>\n" }
        var out = "<h2>Boot phases: architectures side by side</h2>\n"
        out += ReportSVG.phaseChart(CellGrouping.byKernelAndConfig(booted).map { group in
            (group.title, group.cells.flatMap { phaseRows($0, label: CellGrouping.labelInConfigGroup($0)) })
        })
        let byTarget = CellGrouping.byTarget(booted)
        if byTarget.contains(where: { $0.cells.count > 1 }) {
            let kernels = Set(booted.map(\.kernelAxis)).count
            out += "<h2>Boot phases: toolchains and kernels side by side, per target</h2>\n"
            out += ReportSVG.phaseChart(byTarget.filter { $0.cells.count > 1 }.map { group in
                (group.title, group.cells.flatMap { phaseRows($0, label: CellGrouping.labelInTargetGroup($0, kernels: kernels)) })
            })
        }
        return out
    }
}
