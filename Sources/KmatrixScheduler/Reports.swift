import Foundation

/// The report for people and the one for CI systems, both rendered from `RunResults`
/// alone so `kmatrix report RUN` reproduces them.
public enum Reports {
    /// Writes results.json, junit.xml, report.md and report.html into `directory`.
    public static func write(_ results: RunResults, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try results.encoded().write(to: URL(fileURLWithPath: "\(directory)/results.json"))
        try Data(junit(results).utf8).write(to: URL(fileURLWithPath: "\(directory)/junit.xml"))
        try Data(markdown(results).utf8).write(to: URL(fileURLWithPath: "\(directory)/report.md"))
        try Data(html(results).utf8).write(to: URL(fileURLWithPath: "\(directory)/report.html"))
    }

    static let phaseOrder = ["first-output", "firmware", "linux", "init", "marker"]

    static func phase(_ cell: CellResult, _ name: String) -> Double? {
        cell.boot?.phases.first { $0.name == name }?.seconds
    }

    static func seconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 100 ? String(format: "%.0f s", value) : String(format: "%.2f s", value)
    }

    static func megabytes(_ bytes: UInt64?) -> String {
        guard let bytes, bytes > 0 else { return "-" }
        return String(format: "%.2f MB", Double(bytes) / 1e6)
    }

    static func buildTime(_ cell: CellResult, _ results: RunResults) -> String {
        let step = results.steps.first { $0.kind == .kernelBuild && $0.scope == cell.id }
        guard let step else { return "-" }
        guard !step.cacheHit else { return "cached" }
        // Compiled now: how much ccache saved.
        guard let ccache = cell.kernel?.ccache, ccache.calls > 0 else { return seconds(step.seconds) }
        return "\(seconds(step.seconds)), ccache \(ccache.hits)/\(ccache.hits + ccache.misses)"
    }

    static func dtbText(_ cell: CellResult) -> String {
        guard let dtb = cell.dtb else { return "-" }
        if dtb.passed { return dtb.warnings == 0 ? "ok" : "ok, \(dtb.warnings) warnings" }
        return "\(dtb.errors) errors, \(dtb.warnings) warnings"
    }

    /// The side-by-side table a run prints at its end.
    public static func summaryTable(_ results: RunResults) -> String {
        let header = ["cell", "outcome", "kernel", "image", "DTB", "boot"] + phaseOrder
        var rows: [[String]] = []
        for cell in results.cells {
            var row = [cell.id, cell.outcome.rawValue + (cell.passed || cell.outcome == .pass ? "" : " (\(cell.failedStep ?? "?"))"),
                       buildTime(cell, results), megabytes(cell.kernel?.imageBytes), dtbText(cell),
                       cell.boot.map { "\($0.outcome) (\($0.accelerator))" } ?? "-"]
            row += phaseOrder.map { seconds(phase(cell, $0)) }
            rows.append(row)
        }
        return aligned([header] + rows)
    }

    /// Rows as text columns, each as wide as its widest cell.
    static func aligned(_ rows: [[String]], indent: String = "") -> String {
        let widths = (rows.first ?? []).indices.map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            let line = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            return indent + line.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    // MARK: JUnit

    public static func junit(_ results: RunResults) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        let failures = results.cells.filter { !$0.passed }.count
        let tests = GuestTestReports.totals(results)
        out += "<testsuites name=\"kmatrix\" tests=\"\(results.cells.count + tests.tests)\" failures=\"\(failures + tests.failures)\" time=\"\(String(format: "%.3f", results.run.wallSeconds))\">\n"
        out += "  <testsuite name=\"kmatrix.\(xml(results.run.id))\" tests=\"\(results.cells.count)\" failures=\"\(failures)\" timestamp=\"\(ISO8601DateFormatter().string(from: results.run.started))\" hostname=\"\(xml(results.run.host))\">\n"
        for cell in results.cells {
            let time = cell.steps.compactMap { name in results.steps.first { "\($0.kind)[\($0.scope)]" == name }?.seconds }.reduce(0, +)
            out += "    <testcase classname=\"kmatrix.\(xml(cell.target))\" name=\"\(xml(cell.id))\" time=\"\(String(format: "%.3f", time))\">\n"
            if !cell.passed {
                out += "      <failure type=\"\(xml(cell.outcome.rawValue))\" message=\"\(xml(cell.outcome.rawValue)) in \(xml(cell.failedStep ?? "?"))\">\(xml(cell.excerpt.joined(separator: "\n")))</failure>\n"
            }
            var properties: [String] = []
            if let boot = cell.boot {
                properties.append("boot \(boot.outcome) on \(boot.accelerator)")
                for phase in boot.phases { properties.append("\(phase.name) at \(String(format: "%.3f", phase.seconds)) s") }
            }
            if !properties.isEmpty { out += "      <system-out>\(xml(properties.joined(separator: "\n")))</system-out>\n" }
            out += "    </testcase>\n"
        }
        out += "  </testsuite>\n" + GuestTestReports.junit(results) + "</testsuites>\n"
        return out
    }

    static func xml(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters; console logs have them.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" && scalar != "\r" { out += "?" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    // MARK: Markdown

    public static func markdown(_ results: RunResults) -> String {
        let run = results.run
        var out = "# kmatrix run \(run.id)\n\n"
        out += "\(results.summary.passed) of \(results.summary.cells) cells passed"
        out += run.interrupted ? " (interrupted)" : ""
        out += ". Wall \(seconds(run.wallSeconds)), CPU \(seconds(run.cpuSeconds)) on \(run.cores) cores (floor \(seconds(run.floorSeconds))), "
        out += "\(results.summary.cacheHits) of \(results.summary.steps) steps from the cache. Host \(run.host) (\(run.hostArch)); KVM: \(run.kvm).\n\n"
        out += "| cell | outcome | kernel build | image | DTB check | boot | first output | firmware | Linux | init | marker |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|---|\n"
        // Ordered as report.html groups them: the same kernel and config together.
        for cell in CellGrouping.byKernelAndConfig(results.cells).flatMap(\.cells) {
            let boot = cell.boot.map { "\($0.outcome) (\($0.accelerator))" } ?? "-"
            out += "| \(cell.id) | **\(cell.outcome)** | \(buildTime(cell, results)) | \(megabytes(cell.kernel?.imageBytes)) | \(dtbText(cell)) | \(boot) | "
            out += phaseOrder.map { seconds(phase(cell, $0)) }.joined(separator: " | ") + " |\n"
        }
        out += KernelSideBySide.markdown(results)
        out += GuestTestReports.markdown(results)
        out += buildFactsMarkdown(results)
        let withFindings = results.cells.filter { !($0.dtb?.findings.isEmpty ?? true) }
        if !withFindings.isEmpty {
            out += "\n## Device tree findings\n"
            for cell in withFindings {
                out += "\n### \(cell.id) (\(cell.dtb!.file))\n\n"
                for finding in cell.dtb!.findings { out += "- \(finding.severity): `\(finding.node)`: \(finding.reason)\n" }
            }
        }
        let mismatched = results.cells.filter { !($0.config?.mismatches.isEmpty ?? true) }
        if !mismatched.isEmpty {
            out += "\n## Kernel options that did not survive the config\n"
            for cell in mismatched {
                out += "\n### \(cell.id)\n\n| option | asked | got |\n|---|---|---|\n"
                for m in cell.config!.mismatches { out += "| \(m.option) | `\(m.asked)` | `\(m.got)` |\n" }
            }
        }
        let failed = results.cells.filter { !$0.passed }
        if !failed.isEmpty {
            out += "\n## Failures\n"
            for cell in failed {
                out += "\n### \(cell.id): \(cell.outcome) in \(cell.failedStep ?? "?")\n\n```\n\(cell.excerpt.joined(separator: "\n"))\n```\n"
            }
        }
        out += "\n## Steps\n\n| step | status | cache | time | summary |\n|---|---|---|---|---|\n"
        for step in results.steps {
            out += "| \(step.kind)[\(step.scope)] | \(step.status) | \(step.cacheHit ? "hit" : "") | \(seconds(step.seconds)) | \(step.summary.replacingOccurrences(of: "|", with: "\\|")) |\n"
        }
        return out
    }

    // MARK: HTML

    public static func html(_ results: RunResults) -> String {
        let run = results.run
        var body = "<h1>kmatrix run \(xml(run.id))</h1>\n"
        body += "<p><b>\(results.summary.passed) of \(results.summary.cells)</b> cells passed\(run.interrupted ? " (interrupted)" : ""). "
        body += "Wall \(seconds(run.wallSeconds)), CPU \(seconds(run.cpuSeconds)) on \(run.cores) cores (floor \(seconds(run.floorSeconds))); "
        body += "\(results.summary.cacheHits) of \(results.summary.steps) steps cached. Host \(xml(run.host)) (\(xml(run.hostArch))); KVM: \(xml(run.kvm)).</p>\n"
        body += "<table><tr><th>cell</th><th>outcome</th><th>kernel build</th><th>image</th><th>DTB check</th><th>boot</th>"
        body += phaseOrder.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        let columns = 6 + phaseOrder.count
        for group in CellGrouping.byKernelAndConfig(results.cells) {
            body += "<tr class=\"group\"><th colspan=\"\(columns)\">\(xml(group.title))</th></tr>\n"
            for cell in group.cells {
                body += "<tr><td>\(xml(cell.id))</td><td class=\"\(cell.passed ? "pass" : "fail")\">\(xml(cell.outcome.rawValue))</td>"
                body += "<td>\(buildTime(cell, results))</td><td>\(megabytes(cell.kernel?.imageBytes))</td><td>\(xml(dtbText(cell)))</td>"
                body += "<td>\(xml(cell.boot.map { "\($0.outcome) (\($0.accelerator))" } ?? "-"))</td>"
                body += phaseOrder.map { "<td>\(seconds(phase(cell, $0)))</td>" }.joined() + "</tr>\n"
            }
        }
        body += "</table>\n" + GuestTestReports.html(results) + phaseCharts(results)
        body += buildFactsHTML(results)
        for cell in results.cells where !(cell.dtb?.findings.isEmpty ?? true) {
            body += "<h3>Device tree: \(xml(cell.id))</h3><ul>"
            for finding in cell.dtb!.findings {
                body += "<li class=\"\(finding.severity)\">\(xml(finding.severity)): <code>\(xml(finding.node))</code> \(xml(finding.reason))</li>"
            }
            body += "</ul>\n"
        }
        for cell in results.cells where !cell.passed {
            body += "<h3>\(xml(cell.id)): \(xml(cell.outcome.rawValue)) in \(xml(cell.failedStep ?? "?"))</h3><pre>\(xml(cell.excerpt.joined(separator: "\n")))</pre>\n"
        }
        let style = """
            body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
            td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
            .pass{background:#dfd}.fail{background:#fdd;font-weight:bold}.skip{background:#eee}.error{color:#b00}.warning{color:#a60}.info{color:#777}
            tr.group th{text-align:left;background:#eef}
            pre{background:#f6f6f6;padding:1em;overflow:auto}svg text{font-size:12px;font-family:system-ui,sans-serif}
            """
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kmatrix run \(xml(run.id))</title><style>\(style)</style></head><body>\n\(body)</body></html>\n"
    }
}
