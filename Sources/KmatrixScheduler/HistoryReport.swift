import Foundation

/// `kmatrix history`: per cell, how its outcome, boot phases, image size and warnings
/// went over the runs, as text and as history.html (inline SVG trend lines, no script).
public enum HistoryReport {
    static func cellRows(_ history: CellHistory) -> (header: [String], rows: [[String]]) {
        let phases = history.phaseNames
        let header = ["run", "outcome", "image", "text", "warnings", "DTB warnings"] + phases
        let rows = history.entries.map { run, cell -> [String] in
            [run, cell.outcome, Reports.megabytes(cell.imageBytes), Reports.bytes(cell.build?.vmlinux?.text),
             cell.warnings.map(String.init) ?? "-", cell.dtb.map { "\($0.warnings)" } ?? "-"]
                + phases.map { Reports.seconds(cell.phase($0)) }
        }
        return (header, rows)
    }

    /// First to last value of each boot phase and of the image, for the text's trend line.
    static func trends(_ history: CellHistory) -> [String] {
        var out: [String] = []
        func trend(_ name: String, _ values: [Double], _ format: (Double) -> String) {
            guard values.count > 1, let first = values.first, let last = values.last, let low = values.min(), let high = values.max() else { return }
            out.append("\(name): \(format(first)) -> \(format(last)) over \(values.count) runs (min \(format(low)), max \(format(high)))")
        }
        for phase in history.phaseNames {
            trend(phase, history.entries.compactMap { $0.cell.phase(phase) }) { Reports.seconds($0) }
        }
        trend("image", history.entries.compactMap { $0.cell.imageBytes.map { Double($0) } }) { Reports.megabytes(UInt64($0)) }
        return out
    }

    public static func text(_ history: RunHistory) -> String {
        guard !history.runs.isEmpty else { return "No finished runs." + skippedText(history) }
        var out = "\(history.runs.count) run(s), \(history.runs.first!.run.id) to \(history.runs.last!.run.id)\n"
        for cell in history.cells {
            let (header, rows) = cellRows(cell)
            let standings = cell.entries.map(\.cell.standing)
            out += "\n\(cell.cell): \(standings.filter { $0 == .pass }.count) pass, \(standings.filter { $0 == .unstable }.count) unstable, "
            out += "\(standings.filter { $0 == .fail }.count) fail in \(cell.entries.count) run(s)\n"
            out += Reports.aligned([header] + rows, indent: "  ") + "\n"
            for line in trends(cell) { out += "  \(line)\n" }
        }
        return out + skippedText(history)
    }

    static func skippedText(_ history: RunHistory) -> String {
        history.skipped.isEmpty ? "" : "\nNot read:\n" + history.skipped.map { "  \($0)\n" }.joined()
    }

    public static func html(_ history: RunHistory) -> String {
        var body = "<h1>kmatrix history</h1>\n"
        if let first = history.runs.first, let last = history.runs.last {
            body += "<p>\(history.runs.count) run(s), \(Reports.xml(first.run.id)) to \(Reports.xml(last.run.id)); \(history.cells.count) cell(s). "
            body += "Each square is one run (green pass, amber unstable, red fail, grey not run); hover for values.</p>\n"
        } else {
            body += "<p>No finished runs.</p>\n"
        }
        // Every cell on the same x axis, the runs of the history: a run without the cell is a gap.
        let runs = history.runs.map(\.run.id)
        for cell in history.cells {
            let byRun = Dictionary(cell.entries.map { ($0.run, $0.cell) }, uniquingKeysWith: { a, _ in a })
            let column = runs.map { byRun[$0] }
            func series(_ name: String, _ value: (CellSnapshot) -> Double?) -> (name: String, values: [Double?]) {
                (name, column.map { $0.flatMap(value) })
            }
            body += "<h2>\(Reports.xml(cell.cell))</h2>\n"
            body += ReportSVG.outcomeStrip(zip(runs, column).map { ($0, $1?.outcome ?? "not in this run", $1?.standing) }) + "\n<div class=\"charts\">"
            body += ReportSVG.trendChart(title: "boot phases (s since QEMU start)", runs: runs,
                                         series: cell.phaseNames.map { name in series(name) { $0.phase(name) } },
                                         format: { String(format: "%.1f", $0) })
            body += ReportSVG.trendChart(title: "size (MB)", runs: runs, series: [
                series("image") { $0.imageBytes.map { Double($0) / 1e6 } },
                series("vmlinux text") { $0.build?.vmlinux.map { Double($0.text) / 1e6 } },
            ], format: { String(format: "%.2f", $0) })
            body += ReportSVG.trendChart(title: "warnings", runs: runs, series: [
                series("compiler") { $0.warnings.map { Double($0) } },
                series("DTB") { $0.dtb.map { Double($0.warnings) } },
            ], integral: true, format: { String(format: "%.0f", $0) })
            body += "</div>\n"
            let (header, rows) = cellRows(cell)
            body += "<details><summary>every run</summary><table><tr>" + header.map { "<th>\(Reports.xml($0))</th>" }.joined() + "</tr>"
            for row in rows { body += "<tr>" + row.map { "<td>\(Reports.xml($0))</td>" }.joined() + "</tr>" }
            body += "</table></details>\n"
        }
        if !history.skipped.isEmpty {
            body += "<h2>Not read</h2><ul>" + history.skipped.map { "<li>\(Reports.xml($0))</li>" }.joined() + "</ul>\n"
        }
        let style = """
            body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
            td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}.charts{display:flex;flex-wrap:wrap;gap:1em}
            h2{font-size:1.1em;margin-top:1.5em}
            """
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kmatrix history</title><style>\(style)</style></head><body>\n\(body)</body></html>\n"
    }
}
