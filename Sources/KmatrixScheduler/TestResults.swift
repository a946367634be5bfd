import Foundation
import KmatrixBoot
import KmatrixCore

/// The guest's tests as the boot step judges them: the deadline that covers them, their
/// results from the console log, and the cell's verdict when the boot passed but a test did not.
extension BootStep {
    /// The target's deadlines, the total stretched by every script's limit (plus a margin
    /// for sending each one's output): the boot now ends after the tests.
    func testTimeouts(_ settings: BootSettings) -> BootTimeouts {
        var timeouts = settings.timeouts(cell.target, rootDevice: cell.rootDevice)
        if cell.hasGuestScripts { timeouts.total += cell.guestScriptSeconds + 10 }
        return timeouts
    }

    /// Per-test results from the boot log; nil when the cell runs no tests.
    func guestTestResults(_ record: BootRecord, marker: String) -> [GuestTestResult]? {
        guard !cell.tests.isEmpty else { return nil }
        let text = (try? String(contentsOfFile: record.logPath, encoding: .utf8))
            ?? String(decoding: FileManager.default.contents(atPath: record.logPath) ?? Data(), as: UTF8.self)
        // `\r\n` is one Character to Swift: split on any newline, not on "\n".
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        let expected = GuestTestLines.Expected(
            kunitSuites: cell.tests.filter { !$0.suite.kunit.isEmpty }.map(\.name),
            scripts: cell.tests.flatMap { suite in suite.scriptNames.map { (suite: suite.name, name: $0) } })
        return GuestTestLines.results(log: lines, expected: expected, marker: marker)
    }

    /// `tests-failed` when a test failed or did not run, naming them, with their output as the excerpt.
    func testsFailure(_ record: BootRecord, commands: [Command], phases: String) -> StepOutcome? {
        let tests = record.tests ?? []
        let bad = tests.filter { $0.status == .fail || $0.status == .notRun }
        guard !bad.isEmpty else { return nil }
        let names = bad.prefix(5).map { "\($0.id) (\($0.status.rawValue)\($0.reason.map { ": \($0)" } ?? ""))" }
        let more = bad.count > 5 ? " and \(bad.count - 5) more" : ""
        var excerpt: [String] = []
        for test in bad.prefix(3) {
            excerpt.append("--- \(test.id): \(test.status.rawValue)\(test.reason.map { " (\($0))" } ?? "")")
            excerpt += test.output.suffix(12)
        }
        var outcome = StepOutcome.failed(.testsFailed, "\(bad.count) of \(tests.count) tests failed or did not run: "
                                         + names.joined(separator: ", ") + more + " [\(phases)]",
                                         logPath: record.logPath, commands: commands, excerpt: excerpt)
        outcome.output = .boot(record)
        return outcome
    }
}
