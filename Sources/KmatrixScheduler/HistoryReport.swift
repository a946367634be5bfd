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
        trendValues(history).map { trend in
            let format: (Double) -> String = trend.unit == .bytes ? { Reports.megabytes(UInt64($0)) } : { Reports.seconds($0) }
            return "\(trend.name): \(format(trend.first)) -> \(format(trend.last)) over \(trend.runs) runs (min \(format(trend.min)), max \(format(trend.max)))"
        }
    }

    /// Each boot phase and the image over the runs that have a value (two or more).
    static func trendValues(_ history: CellHistory) -> [HistoryListing.Trend] {
        var out: [HistoryListing.Trend] = []
        func trend(_ name: String, _ unit: HistoryListing.Trend.Unit, _ values: [Double]) {
            guard values.count > 1, let first = values.first, let last = values.last, let low = values.min(), let high = values.max() else { return }
            out.append(.init(name: name, unit: unit, first: first, last: last, min: low, max: high, runs: values.count))
        }
        for phase in history.phaseNames {
            trend(phase, .seconds, history.entries.compactMap { $0.cell.phase(phase) })
        }
        trend("image", .bytes, history.entries.compactMap { $0.cell.imageBytes.map { Double($0) } })
        return out
    }

    /// `history --json`: what the text shows, per cell and run.
    public static func listing(_ history: RunHistory) -> HistoryListing {
        HistoryListing(
            runs: history.runs.map { .init(id: $0.run.id, started: $0.run.started) },
            cells: history.cells.map { cell in
                let standings = cell.entries.map(\.cell.standing)
                return .init(
                    cell: cell.cell, pass: standings.filter { $0 == .pass }.count, unstable: standings.filter { $0 == .unstable }.count,
                    fail: standings.filter { $0 == .fail }.count,
                    runs: cell.entries.map { run, snapshot in
                        .init(run: run, outcome: snapshot.outcome, standing: snapshot.standing, imageBytes: snapshot.imageBytes,
                              vmlinuxText: snapshot.build?.vmlinux?.text, warnings: snapshot.warnings, dtbWarnings: snapshot.dtb?.warnings,
                              phases: Dictionary((snapshot.boot?.phases ?? []).map { ($0.name, $0.seconds) }, uniquingKeysWith: { first, _ in first }))
                    },
                    trends: trendValues(cell))
            },
            skipped: history.skipped)
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

/// `kmatrix history --json` (schema kmatrix-history/1, docs/json-output.md).
public struct HistoryListing: Sendable, Encodable {
    public struct Run: Sendable, Encodable {
        public var id: String
        public var started: Date
    }
    /// One cell in one run: a row of the text's table.
    public struct Row: Sendable, Encodable {
        public var run: String
        public var outcome: String
        public var standing: CellSnapshot.Standing
        public var imageBytes: UInt64?
        public var vmlinuxText: UInt64?
        public var warnings: Int?
        public var dtbWarnings: Int?
        /// Boot phase name to seconds since QEMU started.
        public var phases: [String: Double]
    }
    public struct Trend: Sendable, Encodable {
        public enum Unit: String, Sendable, Encodable { case seconds, bytes }
        public var name: String
        public var unit: Unit
        public var first, last, min, max: Double
        /// How many runs had a value.
        public var runs: Int
    }
    public struct Cell: Sendable, Encodable {
        public var cell: String
        public var pass, unstable, fail: Int
        public var runs: [Row]
        public var trends: [Trend]
    }
    public var runs: [Run]
    public var cells: [Cell]
    public var skipped: [String]
    /// Where history.html was written (set by the command).
    public var html: String?
}
