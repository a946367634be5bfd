import Foundation
import KmatrixBoot

/// The guest's tests in the reports: a test × cell grid (tests that differ between cells
/// first), one JUnit testsuite per cell with one testcase per test, and test regressions
/// for `compare`. Rendered from `RunResults` alone, like the rest of the reports.
enum GuestTestReports {
    /// One row per test (`suite/name`), one status (or nil: not in that cell) per cell.
    struct Grid {
        var cells: [String]
        var rows: [(test: String, statuses: [GuestTestResult.Status?])]
        var differing: Int
    }

    static func grid(_ results: RunResults) -> Grid? {
        let cells = results.cells.filter { $0.tests != nil }
        guard !cells.isEmpty else { return nil }
        var order: [String] = []
        var seen: Set<String> = []
        var status: [String: [String: GuestTestResult.Status]] = [:]
        for cell in cells {
            for test in cell.tests ?? [] {
                if seen.insert(test.id).inserted { order.append(test.id) }
                status[cell.id, default: [:]][test.id] = test.status
            }
        }
        let rows = order.map { test in (test: test, statuses: cells.map { status[$0.id]?[test] }) }
        let differs = { (row: (test: String, statuses: [GuestTestResult.Status?])) in Set(row.statuses.map { $0?.rawValue ?? "-" }).count > 1 }
        let first = rows.filter(differs), rest = rows.filter { !differs($0) }
        return Grid(cells: cells.map(\.id), rows: first + rest, differing: first.count)
    }

    static func label(_ status: GuestTestResult.Status?) -> String {
        switch status {
        case .pass?: "pass"
        case .fail?: "FAIL"
        case .skip?: "skip"
        case .notRun?: "not run"
        case nil: "-"
        }
    }

    /// Per cell: how many tests passed, failed, were skipped or did not run.
    static func counts(_ tests: [GuestTestResult]) -> String {
        let by = Dictionary(grouping: tests, by: \.status)
        return "\(tests.count) tests: \(by[.pass]?.count ?? 0) pass, \(by[.fail]?.count ?? 0) fail, "
            + "\(by[.skip]?.count ?? 0) skip, \(by[.notRun]?.count ?? 0) not run"
    }

    static func markdown(_ results: RunResults) -> String {
        guard let grid = grid(results) else { return "" }
        var out = "\n## Tests in the guest\n\n"
        for cell in results.cells { if let tests = cell.tests { out += "- \(cell.id): \(counts(tests))\n" } }
        out += "\n\(grid.differing) of \(grid.rows.count) tests differ between cells (listed first).\n\n"
        out += "| test | " + grid.cells.joined(separator: " | ") + " |\n|---|" + grid.cells.map { _ in "---|" }.joined() + "\n"
        for row in grid.rows {
            out += "| \(row.test.replacingOccurrences(of: "|", with: "\\|")) | " + row.statuses.map(label).joined(separator: " | ") + " |\n"
        }
        return out
    }

    static func html(_ results: RunResults) -> String {
        guard let grid = grid(results) else { return "" }
        let x = Reports.xml
        var out = "<h2>Tests in the guest</h2>\n<ul>"
        for cell in results.cells { if let tests = cell.tests { out += "<li>\(x(cell.id)): \(x(counts(tests)))</li>" } }
        out += "</ul>\n<p>\(grid.differing) of \(grid.rows.count) tests differ between cells (listed first).</p>\n"
        out += "<table class=\"tests\"><tr><th>test</th>" + grid.cells.map { "<th>\(x($0))</th>" }.joined() + "</tr>\n"
        for row in grid.rows {
            out += "<tr><td>\(x(row.test))</td>" + row.statuses.map { status in
                let css = status == .pass ? "pass" : status == .fail || status == .notRun ? "fail" : "skip"
                return "<td class=\"\(css)\">\(label(status))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</table>\n"
    }

    /// One `<testsuite>` per cell that ran tests, one `<testcase>` per test.
    static func junit(_ results: RunResults) -> String {
        let x = Reports.xml
        var out = ""
        for cell in results.cells {
            guard let tests = cell.tests else { continue }
            let failures = tests.filter { $0.status == .fail || $0.status == .notRun }.count
            let skipped = tests.filter { $0.status == .skip }.count
            out += "  <testsuite name=\"\(x(cell.id))\" tests=\"\(tests.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\">\n"
            for test in tests {
                out += "    <testcase classname=\"\(x(cell.id)).\(x(test.suite))\" name=\"\(x(test.name))\">\n"
                let message = x(test.reason ?? test.status.rawValue)
                switch test.status {
                case .pass: break
                case .skip: out += "      <skipped message=\"\(message)\"/>\n"
                case .fail, .notRun:
                    out += "      <failure type=\"\(test.status.rawValue)\" message=\"\(message)\">\(x(test.output.joined(separator: "\n")))</failure>\n"
                }
                if test.status != .fail, test.status != .notRun, !test.output.isEmpty {
                    out += "      <system-out>\(x(test.output.joined(separator: "\n")))</system-out>\n"
                }
                out += "    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        return out
    }

    /// Every test of every cell, for the `<testsuites>` totals.
    static func totals(_ results: RunResults) -> (tests: Int, failures: Int) {
        let tests = results.cells.flatMap { $0.tests ?? [] }
        return (tests.count, tests.filter { $0.status == .fail || $0.status == .notRun }.count)
    }
}

extension RunComparison {
    /// A test whose status changed between two runs of the same cell.
    public struct TestChange: Sendable, Encodable {
        public var cell: String
        public var test: String
        public var before: String
        public var after: String
    }

    /// Tests that passed before and fail (or no longer run) now, and the reverse.
    static func testChanges(old: CellSnapshot, new: CellSnapshot) -> (regressions: [TestChange], fixed: [TestChange]) {
        let before = Dictionary((old.tests ?? []).map { ($0.id, $0.status) }, uniquingKeysWith: { a, _ in a })
        var regressions: [TestChange] = [], fixed: [TestChange] = []
        for test in new.tests ?? [] {
            guard let was = before[test.id] else { continue }
            let change = TestChange(cell: new.id, test: test.id, before: was.rawValue, after: test.status.rawValue)
            let bad: Set<GuestTestResult.Status> = [.fail, .notRun]
            if was == .pass, bad.contains(test.status) { regressions.append(change) }
            if bad.contains(was), test.status == .pass { fixed.append(change) }
        }
        return (regressions, fixed)
    }
}
