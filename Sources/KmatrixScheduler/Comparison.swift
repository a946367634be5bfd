import Foundation

/// What changed between two runs, per cell, in the classes kci-dev uses for a kernel
/// tree's results: regression, fixed, unstable (flaky), persistent failure, new and
/// missing; and the boot phases that moved by more than the noise allowance.
public struct RunComparison: Sendable, Encodable {
    public enum Status: String, Sendable, Encodable, CaseIterable {
        /// Passed before, fails now: the only class that fails `compare`.
        case regression
        case fixed
        /// Flaky on either side: neither a pass nor a regression.
        case unstable
        case persistentFailure = "persistent-failure"
        /// Only in the new run.
        case new
        /// Only in the old run.
        case missing
        /// Passed in both.
        case pass
    }

    public struct Change: Sendable, Encodable {
        public var cell: String
        public var status: Status
        /// The outcomes as results.json spells them; nil where the cell is not in that run.
        public var before: String?
        public var after: String?
    }

    public struct PhaseShift: Sendable, Encodable {
        public var cell: String
        public var phase: String
        public var before: Double
        public var after: Double
        public var change: Double { after - before }
    }

    public var old: String
    public var new: String
    /// Every cell of either run: the new run's order, then the cells only the old one had.
    public var cells: [Change] = []
    public var slower: [PhaseShift] = []
    public var faster: [PhaseShift] = []
    /// Tests in the guest that passed before and fail or no longer run (regressions), and the reverse.
    public var testRegressions: [TestChange] = []
    public var testsFixed: [TestChange] = []

    /// A phase counts as moved when it changed by more than `relative` of its old value
    /// and more than `absolute` seconds (TCG boots jitter by tens of milliseconds).
    public init(old: RunSnapshot, new: RunSnapshot, relative: Double = 0.2, absolute: Double = 0.25) {
        self.old = old.run.id
        self.new = new.run.id
        let before = Dictionary(old.cells.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.cells.map(\.id))
        for cell in new.cells {
            guard let previous = before[cell.id] else {
                cells.append(Change(cell: cell.id, status: .new, after: cell.outcome))
                continue
            }
            cells.append(Change(cell: cell.id, status: Self.status(previous.standing, cell.standing), before: previous.outcome, after: cell.outcome))
            let tests = Self.testChanges(old: previous, new: cell)
            testRegressions += tests.regressions
            testsFixed += tests.fixed
            for phase in cell.boot?.phases ?? [] {
                guard let oldSeconds = previous.phase(phase.name) else { continue }
                let shift = PhaseShift(cell: cell.id, phase: phase.name, before: oldSeconds, after: phase.seconds)
                guard abs(shift.change) > absolute, abs(shift.change) > relative * oldSeconds else { continue }
                if shift.change > 0 { slower.append(shift) } else { faster.append(shift) }
            }
        }
        for cell in old.cells where !after.contains(cell.id) {
            cells.append(Change(cell: cell.id, status: .missing, before: cell.outcome))
        }
    }

    public init(old: RunResults, new: RunResults, relative: Double = 0.2, absolute: Double = 0.25) {
        self.init(old: RunSnapshot(old), new: RunSnapshot(new), relative: relative, absolute: absolute)
    }

    static func status(_ before: CellSnapshot.Standing, _ after: CellSnapshot.Standing) -> Status {
        switch (before, after) {
        case (.unstable, _), (_, .unstable): .unstable
        case (.pass, .fail): .regression
        case (.fail, .pass): .fixed
        case (.fail, .fail): .persistentFailure
        case (.pass, .pass): .pass
        }
    }

    public func cells(_ status: Status) -> [Change] { cells.filter { $0.status == status } }

    public var regressed: Bool { !cells(.regression).isEmpty || !testRegressions.isEmpty }
    public var newFailures: [Change] { cells(.regression) }
    public var fixed: [Change] { cells(.fixed) }
    public var stillFailing: [Change] { cells(.persistentFailure) }
    public var added: [String] { cells(.new).map(\.cell) }
    public var removed: [String] { cells(.missing).map(\.cell) }

    enum CodingKeys: String, CodingKey { case old, new, cells, counts, slower, faster, testRegressions, testsFixed, regressed }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(old, forKey: .old)
        try c.encode(new, forKey: .new)
        try c.encode(cells, forKey: .cells)
        try c.encode(Dictionary(uniqueKeysWithValues: Status.allCases.map { ($0.rawValue, cells($0).count) }), forKey: .counts)
        try c.encode(slower, forKey: .slower)
        try c.encode(faster, forKey: .faster)
        try c.encode(testRegressions, forKey: .testRegressions)
        try c.encode(testsFixed, forKey: .testsFixed)
        try c.encode(regressed, forKey: .regressed)
    }

    public var text: String {
        var out = ["\(old) -> \(new): " + Status.allCases.map { "\(cells($0).count) \($0.rawValue)" }.joined(separator: ", ")]
        func section(_ title: String, _ lines: [String]) {
            guard !lines.isEmpty else { return }
            out.append("\(title):")
            out += lines.map { "  \($0)" }
        }
        let titles: [(Status, String)] = [(.regression, "Regressions"), (.fixed, "Fixed"), (.unstable, "Unstable (flaky)"),
                                          (.persistentFailure, "Persistent failures"), (.new, "New cells"), (.missing, "Missing cells")]
        for (status, title) in titles {
            section(title, cells(status).map { "\($0.cell): \($0.before ?? "-") -> \($0.after ?? "-")" })
        }
        section("Tests that passed and now fail", testRegressions.map { "\($0.cell): \($0.test): \($0.before) -> \($0.after)" })
        section("Tests fixed", testsFixed.map { "\($0.cell): \($0.test): \($0.before) -> \($0.after)" })
        let shift = { (s: PhaseShift) in String(format: "%@ %@: %.2f s -> %.2f s (%+.2f s)", s.cell, s.phase, s.before, s.after, s.change) }
        section("Boot phases slower beyond noise", slower.map(shift))
        section("Boot phases faster beyond noise", faster.map(shift))
        return out.joined(separator: "\n")
    }
}
