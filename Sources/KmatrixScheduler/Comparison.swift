import Foundation

/// What changed between two runs: cells that broke, cells that were fixed, and boot
/// phases that moved by more than the noise allowance.
public struct RunComparison: Sendable, Encodable {
    public struct Change: Sendable, Encodable {
        public var cell: String
        public var before: String
        public var after: String
    }
    public struct PhaseShift: Sendable, Encodable {
        public var cell: String
        public var phase: String
        public var before: Double
        public var after: Double
        public var change: Double { after - before }
    }

    public var newFailures: [Change] = []
    public var fixed: [Change] = []
    public var stillFailing: [Change] = []
    public var added: [String] = []
    public var removed: [String] = []
    public var slower: [PhaseShift] = []
    public var faster: [PhaseShift] = []
    /// Tests in the guest that passed before and fail or no longer run (regressions), and the reverse.
    public var testRegressions: [TestChange] = []
    public var testsFixed: [TestChange] = []

    /// A phase counts as moved when it changed by more than `relative` of its old value
    /// and more than `absolute` seconds (TCG boots jitter by tens of milliseconds).
    public init(old: RunResults, new: RunResults, relative: Double = 0.2, absolute: Double = 0.25) {
        let before = Dictionary(old.cells.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.cells.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        added = new.cells.map(\.id).filter { before[$0] == nil }
        removed = old.cells.map(\.id).filter { after[$0] == nil }
        for cell in new.cells {
            guard let previous = before[cell.id] else { continue }
            let change = Change(cell: cell.id, before: previous.outcome.rawValue, after: cell.outcome.rawValue)
            switch (previous.passed, cell.passed) {
            case (true, false): newFailures.append(change)
            case (false, true): fixed.append(change)
            case (false, false): stillFailing.append(change)
            case (true, true): break
            }
            let tests = Self.testChanges(old: previous, new: cell)
            testRegressions += tests.regressions
            testsFixed += tests.fixed
            for phase in cell.boot?.phases ?? [] {
                guard let old = previous.boot?.phases.first(where: { $0.name == phase.name }) else { continue }
                let shift = PhaseShift(cell: cell.id, phase: phase.name, before: old.seconds, after: phase.seconds)
                guard abs(shift.change) > absolute, abs(shift.change) > relative * old.seconds else { continue }
                if shift.change > 0 { slower.append(shift) } else { faster.append(shift) }
            }
        }
    }

    public var regressed: Bool { !newFailures.isEmpty || !testRegressions.isEmpty }

    public var text: String {
        var out: [String] = []
        func section(_ title: String, _ lines: [String]) {
            guard !lines.isEmpty else { return }
            out.append("\(title):")
            out += lines.map { "  \($0)" }
        }
        section("New failures", newFailures.map { "\($0.cell): \($0.before) -> \($0.after)" })
        section("Fixed", fixed.map { "\($0.cell): \($0.before) -> \($0.after)" })
        section("Still failing", stillFailing.map { "\($0.cell): \($0.before) -> \($0.after)" })
        section("Tests that passed and now fail", testRegressions.map { "\($0.cell): \($0.test): \($0.before) -> \($0.after)" })
        section("Tests fixed", testsFixed.map { "\($0.cell): \($0.test): \($0.before) -> \($0.after)" })
        section("New cells", added)
        section("Cells gone", removed)
        let shift = { (s: PhaseShift) in String(format: "%@ %@: %.2f s -> %.2f s (%+.2f s)", s.cell, s.phase, s.before, s.after, s.change) }
        section("Boot phases slower beyond noise", slower.map(shift))
        section("Boot phases faster beyond noise", faster.map(shift))
        return out.isEmpty ? "No changes beyond noise." : out.joined(separator: "\n")
    }
}
