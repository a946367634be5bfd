import Foundation
import KmatrixCore

/// `kmatrix merge`: run directories written by `run --out` on any number of machines (one
/// CI job per cell) combined into one run directory, with the reports a single run writes.
public enum RunMerge {
    /// One input: where its run directory is now, and what it holds.
    public struct Input: Sendable {
        public var directory: String
        public var results: RunResults
        public init(directory: String, results: RunResults) {
            self.directory = directory
            self.results = results
        }

        public static func load(_ path: String) throws(KmatrixError) -> Input {
            let file = path.hasSuffix(".json") ? path : "\(path)/results.json"
            let directory = (absolutePath(file, relativeTo: FileManager.default.currentDirectoryPath) as NSString).deletingLastPathComponent
            return Input(directory: directory, results: try RunResults.load(from: file))
        }
    }

    public struct Merged: Sendable {
        public var results: RunResults
        /// Cells of the matrix that no input ran (a CI job that never reported, or a selection).
        public var missing: [String]
    }

    /// The combined results; nothing is written. Results of different matrices, results
    /// without a matrix digest, and a cell whose results differ between inputs are bad input,
    /// every one named.
    public static func combine(_ inputs: [Input], into directory: String, command: [String] = [],
                               now: Date = Date()) throws(KmatrixErrors) -> Merged {
        var problems: [KmatrixError] = []
        if inputs.isEmpty { problems.append(.badInput("merge needs at least one run directory")) }
        let undigested = inputs.filter { $0.results.run.matrixDigest == nil }
        for input in undigested {
            problems.append(.badInput("\(input.directory)/results.json: no run.matrixDigest (written by an older kmatrix), so it cannot be told which matrix it belongs to"))
        }
        let digests = Dictionary(grouping: inputs.filter { $0.results.run.matrixDigest != nil }) { $0.results.run.matrixDigest! }
        if digests.count > 1 {
            let groups = digests.sorted { $0.key < $1.key }.map { digest, group in
                "  matrix \(group[0].results.run.matrix) digest \(digest.prefix(16)): \(group.map(\.directory).joined(separator: ", "))"
            }
            problems.append(.badInput("the results come from \(digests.count) different matrices (or descriptors):\n" + groups.joined(separator: "\n")))
        }

        // Cells: the first input that has one keeps it; an identical copy elsewhere is fine.
        var cells: [String: (cell: CellResult, from: Int)] = [:]
        var arrival: [String] = []
        for (index, input) in inputs.enumerated() {
            for cell in input.results.cells {
                guard let kept = cells[cell.id] else {
                    cells[cell.id] = (cell, index)
                    arrival.append(cell.id)
                    continue
                }
                if verdict(kept.cell) != verdict(cell) {
                    problems.append(.badInput("cell \(cell.id) has different results: \(verdict(kept.cell)) in \(inputs[kept.from].directory), \(verdict(cell)) in \(input.directory)"))
                }
            }
        }
        guard problems.isEmpty else { throw KmatrixErrors(problems) }

        let first = inputs[0].results.run
        let order = first.matrixCells ?? []
        let position = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let ids = arrival.enumerated().sorted { a, b in
            (position[a.element] ?? order.count + a.offset, a.offset) < (position[b.element] ?? order.count + b.offset, b.offset)
        }.map(\.element)

        var merged: [CellResult] = []
        var steps: [StepResult] = []
        var seenSteps = Set<StepID>()
        let cellIDs = Set(ids)
        // Shared steps (sources, busybox) ran on every machine: the first input's is kept.
        for (index, input) in inputs.enumerated() {
            for var step in input.results.steps where !seenSteps.contains(step.id) {
                if cellIDs.contains(step.scope), cells[step.scope]?.from != index { continue }
                seenSteps.insert(step.id)
                step.log = step.log.map { relocate($0, from: input, to: directory) }
                steps.append(step)
            }
        }
        for id in ids {
            guard let (cell, from) = cells[id] else { continue }
            merged.append(relocated(cell, from: inputs[from], to: directory))
        }

        let runs = inputs.map(\.results.run)
        func distinct(_ values: [String]) -> String {
            var seen: [String] = []
            for value in values where !seen.contains(value) { seen.append(value) }
            return seen.joined(separator: ", ")
        }
        let started = runs.map(\.started).min() ?? now, finished = runs.map(\.finished).max() ?? now
        var info = RunInfo(id: "merged-" + MatrixRun.runID(now), started: started, finished: finished,
                           wallSeconds: finished.timeIntervalSince(started),
                           cpuSeconds: runs.reduce(0) { $0 + $1.cpuSeconds }, floorSeconds: runs.reduce(0) { $0 + $1.floorSeconds },
                           jobs: runs.map(\.jobs).max() ?? 0, cores: runs.map(\.cores).max() ?? 0,
                           host: distinct(runs.map(\.host)), hostArch: distinct(runs.map(\.hostArch)), kvm: distinct(runs.map(\.kvm)),
                           matrix: first.matrix, cache: distinct(runs.map(\.cache)), command: command,
                           interrupted: runs.contains { $0.interrupted })
        info.directory = directory
        info.matrixDigest = first.matrixDigest
        info.matrixCells = first.matrixCells
        let missing = order.filter { !cellIDs.contains($0) }
        return Merged(results: RunResults(run: info, cells: merged, steps: steps), missing: missing)
    }

    /// Combines `inputs` into `directory`: every input's logs copied in (a shared step's log
    /// once), paths in the results pointed there, then results.json and the reports.
    public static func write(_ inputs: [Input], into directory: String, command: [String] = []) throws(KmatrixErrors) -> Merged {
        let merged = try combine(inputs, into: directory, command: command)
        do {
            for input in inputs { try copyLogs(from: "\(input.directory)/logs", to: "\(directory)/logs") }
            try Reports.write(merged.results, to: directory)
        } catch {
            throw KmatrixErrors([.host("cannot write the merged run into \(directory) (is the disk full?)", underlying: error)])
        }
        return merged
    }

    /// What must agree when a cell comes from two inputs.
    static func verdict(_ cell: CellResult) -> String {
        cell.passed ? cell.outcome.rawValue : "\(cell.outcome.rawValue) in \(cell.failedStep ?? "?")"
    }

    /// A path under the input's run directory as it was written, moved under `directory`.
    /// The input may have been written elsewhere (another machine's job folder): `run.directory`
    /// says where, and the folder the results are in now is tried too.
    static func relocate(_ path: String, from input: Input, to directory: String) -> String {
        for base in [input.results.run.directory, input.directory].compactMap({ $0 }) {
            let prefix = base.hasSuffix("/") ? base : base + "/"
            if path.hasPrefix(prefix) { return "\(directory)/\(path.dropFirst(prefix.count))" }
        }
        return path
    }

    static func relocated(_ cell: CellResult, from input: Input, to directory: String) -> CellResult {
        var cell = cell
        if var boot = cell.boot {
            boot.log = relocate(boot.log, from: input, to: directory)
            boot.attempts = boot.attempts?.map { attempt in
                var attempt = attempt
                attempt.logPath = relocate(attempt.logPath, from: input, to: directory)
                return attempt
            }
            if let lavaLog = boot.lava?.log { boot.lava?.log = relocate(lavaLog, from: input, to: directory) }
            cell.boot = boot
        }
        return cell
    }

    /// Copies a tree of logs, keeping files that are already there (a shared step's log,
    /// which every input has, is the first input's).
    static func copyLogs(from source: String, to destination: String) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: source) else { return }
        try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
        while let name = walker.nextObject() as? String {
            let from = "\(source)/\(name)", to = "\(destination)/\(name)"
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: from, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
            } else if !fm.fileExists(atPath: to) {
                try fm.copyItem(atPath: from, toPath: to)
            }
        }
    }
}
