import Foundation
import KmatrixKernel

/// The build-facts part of report.md and report.html: sizes, warnings and the change
/// since each cell's previous run.
extension Reports {
    static func bytes(_ value: UInt64?) -> String {
        guard let value else { return "-" }
        if value >= 1_000_000 { return String(format: "%.2f MB", Double(value) / 1e6) }
        return value >= 10_000 ? String(format: "%.1f KB", Double(value) / 1e3) : "\(value) B"
    }

    /// `+1.2 KB`, `-300 B`, `=`; nil when either side is unknown.
    static func delta(_ old: UInt64?, _ new: UInt64?) -> String? {
        guard let old, let new else { return nil }
        if old == new { return "=" }
        let change = Int64(bitPattern: new &- old)
        let magnitude = UInt64(abs(change))
        return (change > 0 ? "+" : "-") + bytes(magnitude)
    }

    static func withDelta(_ new: UInt64?, _ old: UInt64?) -> String {
        guard let change = delta(old, new), change != "=" else { return bytes(new) }
        return "\(bytes(new)) (\(change))"
    }

    /// One row per cell: what it is now, the change in parentheses.
    static func buildFactRows(_ results: RunResults) -> [[String]] {
        results.cells.compactMap { cell in
            guard let build = cell.build else { return nil }
            let previous = build.sincePrevious
            var change = "-"
            if let previous {
                var parts: [String] = []
                if previous.configChanged { parts.append("config: \(previous.configDiff.count) option(s)") }
                if let symbols = previous.symbols { parts.append("\(symbols.changed) symbol(s) changed size") }
                if !previous.configChanged, previous.symbols == nil { parts.append("same config") }
                change = "\(previous.run): " + parts.joined(separator: ", ")
            }
            return [cell.id, withDelta(build.imageBytes, previous?.imageBytes),
                    withDelta(build.vmlinux?.text, previous?.vmlinux?.text), withDelta(build.vmlinux?.data, previous?.vmlinux?.data),
                    withDelta(build.vmlinux?.bss, previous?.vmlinux?.bss), "\(build.warnings)", change]
        }
    }

    static let buildFactHeader = ["cell", "image", "text", "data", "bss", "warnings", "since previous run"]

    /// The details under the table: warnings, config changes, the biggest symbol changes.
    static func buildFactDetails(_ cell: CellResult) -> [(title: String, lines: [String])] {
        guard let build = cell.build else { return [] }
        var out: [(String, [String])] = []
        if !build.firstWarnings.isEmpty {
            out.append(("first compiler warnings (\(build.warnings) in all)", build.firstWarnings))
        }
        if let previous = build.sincePrevious {
            if !previous.configDiff.isEmpty { out.append(("config since \(previous.run) (scripts/diffconfig)", previous.configDiff)) }
            if let symbols = previous.symbols, !symbols.symbols.isEmpty {
                func right(_ text: String) -> String { String(repeating: " ", count: max(0, 8 - text.count)) + text }
                let rows = symbols.symbols.map { symbol in
                    symbol.name.padding(toLength: max(40, symbol.name.count), withPad: " ", startingAt: 0)
                        + right(symbol.old.map(String.init) ?? "-") + right(symbol.new.map(String.init) ?? "-")
                        + right(String(format: "%+d", symbol.delta))
                }
                var total: [String] = []
                if let before = symbols.before, let after = symbols.after { total = ["Total: before \(before), after \(after)"] }
                out.append(("symbol sizes since \(previous.run) (scripts/bloat-o-meter)", [symbols.summary] + rows + total))
            }
            if !previous.notes.isEmpty { out.append(("not compared", previous.notes)) }
        }
        return out
    }

    static func buildFactsMarkdown(_ results: RunResults) -> String {
        let rows = buildFactRows(results)
        guard !rows.isEmpty else { return "" }
        var out = "\n## Build facts\n\n| " + buildFactHeader.joined(separator: " | ") + " |\n"
        out += "|" + String(repeating: "---|", count: buildFactHeader.count) + "\n"
        for row in rows { out += "| " + row.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        for cell in results.cells {
            for (title, lines) in buildFactDetails(cell) {
                out += "\n### \(cell.id): \(title)\n\n```\n\(lines.joined(separator: "\n"))\n```\n"
            }
        }
        return out
    }

    static func buildFactsHTML(_ results: RunResults) -> String {
        let rows = buildFactRows(results)
        guard !rows.isEmpty else { return "" }
        var out = "<h2>Build facts</h2>\n<table><tr>" + buildFactHeader.map { "<th>\(xml($0))</th>" }.joined() + "</tr>\n"
        for row in rows { out += "<tr>" + row.map { "<td>\(xml($0))</td>" }.joined() + "</tr>\n" }
        out += "</table>\n"
        for cell in results.cells {
            for (title, lines) in buildFactDetails(cell) {
                out += "<details><summary>\(xml(cell.id)): \(xml(title))</summary><pre>\(xml(lines.joined(separator: "\n")))</pre></details>\n"
            }
        }
        return out
    }
}
