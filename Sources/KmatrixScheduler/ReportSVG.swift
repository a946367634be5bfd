import Foundation

/// One bar of a phase chart: milestones in order, each as seconds since the row's clock
/// started (QEMU's start for host phases, the kernel's for printk phases). Each segment
/// runs from the previous milestone to this one.
public struct PhaseSeries: Sendable {
    public var label: String
    public var phases: [(name: String, seconds: Double)]
    /// Where the clock stopped (QEMU gone), drawn grey after the last milestone.
    public var end: Double?
    public var failed: Bool

    public init(label: String, phases: [(name: String, seconds: Double)], end: Double? = nil, failed: Bool = false) {
        self.label = label; self.phases = phases; self.end = end; self.failed = failed
    }
}

/// Inline SVG for the reports: no script, no fonts or styles fetched, readable without CSS.
enum ReportSVG {
    /// Neighbouring phases get colours far apart, so a segment's edges are seen at a glance.
    static let palette = ["#9ecae1", "#fdae6b", "#3182bd", "#74c476", "#756bb1", "#e6550d", "#31a354", "#fdd0a2",
                          "#08519c", "#bcbddc", "#a1d99b", "#636363", "#e7969c", "#843c39"]
    static let labelWidth = 330.0, plotWidth = 720.0, rowHeight = 20.0, groupHeight = 24.0

    /// A color per phase name, stable in the order names first appear (host phases first).
    static func colors(for names: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for name in Reports.phaseOrder + names where out[name] == nil { out[name] = palette[out.count % palette.count] }
        return out
    }

    /// Round tick spacing for an axis of `span` seconds: 1, 2 or 5 times a power of ten.
    static func tickStep(_ span: Double, ticks: Double = 8) -> Double {
        guard span > 0 else { return 1 }
        let raw = span / ticks, power = pow(10, floor(log10(raw)))
        return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? raw
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Horizontal bars on one shared time axis, in titled groups.
    static func phaseChart(_ groups: [(title: String, rows: [PhaseSeries])]) -> String {
        let rows = groups.flatMap(\.rows)
        guard !rows.isEmpty else { return "<p>No boots.</p>\n" }
        let names = rows.flatMap { $0.phases.map(\.name) }
        let color = colors(for: names)
        let longest = max(rows.map { max($0.end ?? 0, $0.phases.map(\.seconds).max() ?? 0) }.max() ?? 1, 0.1)
        let step = tickStep(longest)
        let span = (longest / step).rounded(.up) * step
        func x(_ seconds: Double) -> Double { labelWidth + seconds / span * plotWidth }
        var body = ""
        var y = 10.0
        for group in groups where !group.rows.isEmpty {
            body += "<text x=\"0\" y=\"\(number(y + 15))\" font-weight=\"bold\">\(Reports.xml(group.title))</text>"
            y += groupHeight
            for row in group.rows {
                body += "<text x=\"8\" y=\"\(number(y + 13))\"\(row.failed ? " fill=\"#b00\"" : "")>\(Reports.xml(row.label))</text>"
                var start = 0.0
                for phase in row.phases where phase.seconds >= start {
                    let width = max(x(phase.seconds) - x(start), 1)
                    body += "<rect x=\"\(number(x(start)))\" y=\"\(number(y))\" width=\"\(number(width))\" height=\"\(number(rowHeight - 4))\" fill=\"\(color[phase.name] ?? "#999")\">"
                    body += "<title>\(Reports.xml(row.label)) \(Reports.xml(phase.name)): \(String(format: "%.3f", phase.seconds)) s</title></rect>"
                    start = phase.seconds
                }
                if let end = row.end, end > start {
                    body += "<rect x=\"\(number(x(start)))\" y=\"\(number(y))\" width=\"\(number(x(end) - x(start)))\" height=\"\(number(rowHeight - 4))\" fill=\"#ddd\">"
                    body += "<title>until QEMU ended: \(String(format: "%.3f", end)) s</title></rect>"
                }
                y += rowHeight
            }
        }
        // The axis: a grid line and a label per tick, under every group.
        var axis = ""
        for tick in stride(from: 0.0, through: span + step / 2, by: step) {
            axis += "<line x1=\"\(number(x(tick)))\" y1=\"6\" x2=\"\(number(x(tick)))\" y2=\"\(number(y))\" stroke=\"#eee\"/>"
            axis += "<text x=\"\(number(x(tick) - 8))\" y=\"\(number(y + 14))\">\(tick < 10 ? String(format: "%g", tick) : String(format: "%.0f", tick)) s</text>"
        }
        y += 24
        var legend = ""
        var lx = labelWidth
        for name in color.keys.sorted(by: { (names.firstIndex(of: $0) ?? 99, $0) < (names.firstIndex(of: $1) ?? 99, $1) }) where names.contains(name) {
            if lx + 130 > labelWidth + plotWidth { lx = labelWidth; y += 18 }
            legend += "<rect x=\"\(number(lx))\" y=\"\(number(y))\" width=\"10\" height=\"10\" fill=\"\(color[name]!)\"/><text x=\"\(number(lx + 14))\" y=\"\(number(y + 9))\">\(Reports.xml(name))</text>"
            lx += 130
        }
        y += 20
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelWidth + plotWidth + 30))\" height=\"\(Int(y))\" font-family=\"sans-serif\" font-size=\"12\">"
            + axis + body + legend + "</svg>\n"
    }
}

extension ReportSVG {
    /// Lines over runs (x: the runs in order, y: from 0), one per series; a missing value
    /// breaks its line. Every point carries its value as a tooltip.
    /// A series is coloured by its name as in the phase bars; `integral` keeps ticks whole (counts).
    static func trendChart(title: String, runs: [String], series: [(name: String, values: [Double?])],
                           integral: Bool = false, format: (Double) -> String) -> String {
        let width = 420.0, height = 170.0, left = 56.0, top = 22.0, bottom = 24.0, right = 116.0
        let values = series.flatMap { $0.values.compactMap { $0 } }
        guard !runs.isEmpty, let highest = values.max() else { return "" }
        let color = colors(for: series.map(\.name))
        let step = integral ? max(tickStep(max(highest, 1), ticks: 4), 1) : tickStep(max(highest, 1e-9), ticks: 4)
        let top_ = max((highest / step).rounded(.up), 1) * step
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ index: Int) -> Double { left + (runs.count == 1 ? plotWidth / 2 : Double(index) / Double(runs.count - 1) * plotWidth) }
        func y(_ value: Double) -> Double { top + plotHeight - value / top_ * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<text x=\"0\" y=\"13\" font-weight=\"bold\">\(Reports.xml(title))</text>"
        for tick in stride(from: 0.0, through: top_ + step / 2, by: step) {
            svg += "<line x1=\"\(number(left))\" y1=\"\(number(y(tick)))\" x2=\"\(number(left + plotWidth))\" y2=\"\(number(y(tick)))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(number(left - 4))\" y=\"\(number(y(tick) + 4))\" text-anchor=\"end\">\(Reports.xml(format(tick)))</text>"
        }
        svg += "<text x=\"\(number(left))\" y=\"\(number(height - 6))\">run 1</text>"
        svg += "<text x=\"\(number(left + plotWidth))\" y=\"\(number(height - 6))\" text-anchor=\"end\">run \(runs.count)</text>"
        for (index, line) in series.enumerated() {
            let color = color[line.name] ?? palette[index % palette.count]
            var segment: [String] = []
            func flush() {
                if segment.count > 1 { svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(segment.joined(separator: " "))\"/>" }
                segment = []
            }
            for (run, value) in line.values.enumerated() {
                guard let value, run < runs.count else { flush(); continue }
                segment.append("\(number(x(run))),\(number(y(value)))")
                svg += "<circle cx=\"\(number(x(run)))\" cy=\"\(number(y(value)))\" r=\"3\" fill=\"\(color)\"><title>\(Reports.xml(runs[run])) \(Reports.xml(line.name)): \(Reports.xml(format(value)))</title></circle>"
            }
            flush()
            let ly = top + Double(index) * 15
            svg += "<rect x=\"\(number(width - right + 10))\" y=\"\(number(ly))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(number(width - right + 24))\" y=\"\(number(ly + 9))\">\(Reports.xml(line.name))</text>"
        }
        return svg + "</svg>"
    }

    /// A square per run, coloured by how the cell stood: green pass, amber unstable, red
    /// fail, grey where the run did not have the cell.
    static func outcomeStrip(_ entries: [(run: String, outcome: String, standing: CellSnapshot.Standing?)]) -> String {
        let fill: [CellSnapshot.Standing: String] = [.pass: "#4caf50", .unstable: "#ffb300", .fail: "#d32f2f"]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(entries.count * 22 + 4)\" height=\"24\">"
        for (index, entry) in entries.enumerated() {
            svg += "<rect x=\"\(index * 22 + 2)\" y=\"3\" width=\"18\" height=\"18\" rx=\"3\" fill=\"\(entry.standing.flatMap { fill[$0] } ?? "#ddd")\">"
            svg += "<title>\(Reports.xml(entry.run)): \(Reports.xml(entry.outcome))</title></rect>"
        }
        return svg + "</svg>"
    }
}
