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
