import Foundation
import KmatrixBoot
import KmatrixCore

/// The part of a results.json that history and compare read. Decoded leniently: an
/// outcome this kmatrix does not know (written by a newer one) is kept as its text, and
/// fields added later are simply not read, so old and new runs line up in one history.
public struct RunSnapshot: Sendable, Decodable {
    public struct Run: Sendable, Decodable {
        public var id: String
        public var started: Date
    }
    public var run: Run
    public var cells: [CellSnapshot]

    public init(run: Run, cells: [CellSnapshot]) {
        self.run = run
        self.cells = cells
    }

    public init(_ results: RunResults) {
        self.init(run: Run(id: results.run.id, started: results.run.started), cells: results.cells.map(CellSnapshot.init))
    }

    /// A run directory or its results.json.
    public static func load(from path: String) throws(KmatrixError) -> RunSnapshot {
        let (file, data) = try RunResults.read(path)
        do {
            return try RunResults.decoder.decode(RunSnapshot.self, from: data)
        } catch {
            throw .badInput("\(file): not a kmatrix results file: \(error)")
        }
    }
}

public struct CellSnapshot: Sendable, Decodable {
    public var id: String
    public var target: String
    public var toolchain: String
    public var profile: String
    public var rootfs: String
    /// As results.json spells it; `CellOutcome(rawValue:)` is nil for one this kmatrix does not know.
    public var outcome: String
    /// Whether the outcome met the cell's expectation.
    public var passed: Bool
    public var kernel: KernelSummary?
    public var build: BuildFacts?
    public var dtb: DeviceTreeSummary?
    public var boot: BootSummary?
    /// The matrix's name for the cell's kernel; nil with one unnamed kernel.
    public var kernelName: String?
    /// Tests run in the guest; nil when the cell runs none.
    public var tests: [GuestTestResult]?

    init(_ cell: CellResult) {
        id = cell.id; target = cell.target; toolchain = cell.toolchain; profile = cell.profile; rootfs = cell.rootfs
        outcome = cell.outcome.rawValue; passed = cell.passed
        kernel = cell.kernel; build = cell.build; dtb = cell.dtb; boot = cell.boot
        kernelName = cell.kernelName; tests = cell.tests
    }

    /// How a cell's outcome counts when runs are compared.
    public enum Standing: String, Sendable, Encodable {
        /// Passed, or failed the way its `expect` said.
        case pass
        /// Passed, but not plainly: a boot that failed and then passed (`flaky`), or an
        /// outcome this kmatrix cannot name that still met the expectation.
        case unstable
        case fail
    }

    public var standing: Standing {
        guard passed else { return .fail }
        // An expected failure is a pass; a passing outcome other than `pass` is not plain.
        if outcome == CellOutcome.pass.rawValue || CellOutcome(rawValue: outcome)?.failure != nil { return .pass }
        return .unstable
    }

    public func phase(_ name: String) -> Double? { boot?.phases.first { $0.name == name }?.seconds }
    public var imageBytes: UInt64? { build?.imageBytes ?? kernel?.imageBytes }
    public var warnings: Int? { build?.warnings ?? kernel?.warnings }
}

/// A cell over runs: the runs it appears in, oldest first.
public struct CellHistory: Sendable {
    public var cell: String
    public var entries: [(run: String, cell: CellSnapshot)]

    /// Boot phase names in the order the cells list them.
    public var phaseNames: [String] {
        var names: [String] = []
        for entry in entries { for phase in entry.cell.boot?.phases ?? [] where !names.contains(phase.name) { names.append(phase.name) } }
        return names
    }
}

/// Every finished run in a cache's run folder, oldest first.
public struct RunHistory: Sendable {
    public var runs: [RunSnapshot]
    /// Run directories that could not be read, with why (a run still going has no results.json yet).
    public var skipped: [String]

    public init(runs: [RunSnapshot], skipped: [String] = []) {
        self.runs = runs
        self.skipped = skipped
    }

    /// Reads `<runs>/*/results.json`; keeps the last `last` runs that have any of `cells`.
    public static func load(runs directory: String, last: Int? = nil, cells: [String] = []) -> RunHistory {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0 != "latest" }.sorted()
        var history = RunHistory(runs: [])
        for name in names where FileManager.default.fileExists(atPath: "\(directory)/\(name)/results.json") {
            do {
                var snapshot = try RunSnapshot.load(from: "\(directory)/\(name)")
                if !cells.isEmpty { snapshot.cells = snapshot.cells.filter { cells.contains($0.id) } }
                if !snapshot.cells.isEmpty { history.runs.append(snapshot) }
            } catch {
                history.skipped.append("\(name): \(error.message)")
            }
        }
        history.runs.sort { ($0.run.started, $0.run.id) < ($1.run.started, $1.run.id) }
        if let last, last >= 0 { history.runs = Array(history.runs.suffix(last)) }
        return history
    }

    /// Per cell, in the order cells first appear.
    public var cells: [CellHistory] {
        var order: [String] = []
        var entries: [String: [(run: String, cell: CellSnapshot)]] = [:]
        for run in runs {
            for cell in run.cells {
                if entries[cell.id] == nil { order.append(cell.id) }
                entries[cell.id, default: []].append((run.run.id, cell))
            }
        }
        return order.map { CellHistory(cell: $0, entries: entries[$0] ?? []) }
    }
}
