import Foundation
import KmatrixCore
import KmatrixKernel

/// What a kernel engineer reads about a build before booting it: how big it came out,
/// what the compiler warned about, and what changed since the cell's previous run.
public struct BuildFacts: Codable, Sendable {
    public var imageBytes: UInt64?
    /// `vmlinux`'s text, data and bss, as binutils' `size` sums them.
    public var vmlinux: SectionSizes?
    public var warnings: Int
    /// The first compiler warning lines of the build log.
    public var firstWarnings: [String]
    /// The kernel tree built from: its `scripts/diffconfig` and `scripts/bloat-o-meter`
    /// compare this build with the previous one.
    public var sourceTree: String?
    /// Against the newest earlier run that built this cell; nil when there is none.
    public var sincePrevious: BuildChange?

    public init(imageBytes: UInt64?, vmlinux: SectionSizes?, warnings: Int, firstWarnings: [String],
                sourceTree: String? = nil, sincePrevious: BuildChange? = nil) {
        self.imageBytes = imageBytes; self.vmlinux = vmlinux; self.warnings = warnings
        self.firstWarnings = firstWarnings; self.sourceTree = sourceTree; self.sincePrevious = sincePrevious
    }

    /// From the record and the files it names; a cached build is read the same way (its
    /// build log and vmlinux are published with it).
    init(_ record: KernelBuildRecord) {
        let log = record.artifacts.buildLog.map { BuildLogSummary.scan($0) }
        self.init(imageBytes: record.imageBytes, vmlinux: record.artifacts.vmlinux.flatMap { try? SectionSizes.read(elf: $0) },
                  warnings: log?.warnings ?? record.warnings, firstWarnings: log?.firstWarnings ?? [],
                  sourceTree: record.sourceTree)
    }
}

/// One cell's build against the same cell in an earlier run.
public struct BuildChange: Codable, Sendable {
    /// The earlier run's id.
    public var run: String
    public var imageBytes: UInt64?
    public var vmlinux: SectionSizes?
    public var configChanged: Bool
    /// `scripts/diffconfig` old new: `-OPTION value`, `+OPTION value`, ` OPTION old -> new`.
    public var configDiff: [String]
    public var symbols: SymbolSizeDiff?
    /// What could not be compared, and why.
    public var notes: [String]

    public init(run: String, imageBytes: UInt64? = nil, vmlinux: SectionSizes? = nil, configChanged: Bool = false,
                configDiff: [String] = [], symbols: SymbolSizeDiff? = nil, notes: [String] = []) {
        self.run = run; self.imageBytes = imageBytes; self.vmlinux = vmlinux; self.configChanged = configChanged
        self.configDiff = configDiff; self.symbols = symbols; self.notes = notes
    }
}

/// `scripts/bloat-o-meter` old new: per symbol, the size before and after.
public struct SymbolSizeDiff: Codable, Sendable, Equatable {
    public struct Symbol: Codable, Sendable, Equatable {
        public var name: String
        /// nil: the symbol is not in that build.
        public var old: Int?
        public var new: Int?
        public var delta: Int
    }
    /// Its first line: `add/remove: 1/0 grow/shrink: 2/1 up/down: 120/-8 (112)`.
    public var summary: String
    public var before: Int?
    public var after: Int?
    /// The largest changes first, at most `limit`.
    public var symbols: [Symbol]
    /// How many symbols changed in all.
    public var changed: Int

    public static let limit = 20

    /// Parses bloat-o-meter's table; nil when the text is not one.
    public static func parse(_ text: String) -> SymbolSizeDiff? {
        let lines = text.split(separator: "\n").map(String.init)
        guard let summary = lines.first(where: { $0.hasPrefix("add/remove:") }) else { return nil }
        var diff = SymbolSizeDiff(summary: summary, symbols: [], changed: 0)
        var inTable = false
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if line.hasPrefix("Total:") {
                // `Total: Before=1234, After=1274, chg +3.24%`
                for field in fields {
                    let value = Int(field.drop { $0 != "=" }.dropFirst().filter(\.isNumber))
                    if field.hasPrefix("Before=") { diff.before = value }
                    if field.hasPrefix("After=") { diff.after = value }
                }
                inTable = false
            } else if fields.count == 4, fields[1] == "old", fields[2] == "new", fields[3] == "delta" {
                inTable = true
            } else if inTable, fields.count == 4, let delta = Int(fields[3]) {
                diff.changed += 1
                diff.symbols.append(Symbol(name: fields[0], old: Int(fields[1]), new: Int(fields[2]), delta: delta))
            }
        }
        diff.symbols = Array(diff.symbols.sorted { abs($0.delta) > abs($1.delta) }.prefix(limit))
        return diff
    }
}

extension BuildChange {
    /// Compares each cell's build with the newest earlier run in `runs` that built it:
    /// the config with the kernel's `scripts/diffconfig`, symbol sizes with
    /// `scripts/bloat-o-meter` when both vmlinux files are still in the cache.
    static func attach(to cells: [CellResult], runsIn runs: String, before current: String) async -> [CellResult] {
        var history = EarlierRuns(directory: runs, before: current)
        var out = cells
        for index in out.indices {
            guard out[index].build != nil, let (run, previous) = history.newest(with: out[index].id) else { continue }
            let change = await compare(out[index], with: previous, of: run)
            out[index].build?.sincePrevious = change
        }
        return out
    }

    static func compare(_ cell: CellResult, with previous: CellResult, of run: String) async -> BuildChange {
        var change = BuildChange(run: run, imageBytes: previous.build?.imageBytes ?? previous.kernel?.imageBytes,
                                 vmlinux: previous.build?.vmlinux)
        let tree = cell.build?.sourceTree
        func artifact(_ result: CellResult, _ name: String) -> Artifact? { result.artifacts.first { $0.name == name } }
        func script(_ name: String, _ old: Artifact?, _ new: Artifact?, _ what: String) async -> String? {
            guard let old, let new else { return nil }
            guard FileManager.default.fileExists(atPath: old.path), FileManager.default.fileExists(atPath: new.path) else {
                change.notes.append("\(what) of run \(run) is no longer in the cache (\(old.path)): not compared")
                return nil
            }
            guard let tree, FileManager.default.fileExists(atPath: "\(tree)/scripts/\(name)") else {
                change.notes.append("no scripts/\(name) in the kernel tree \(tree ?? "(unknown)"): \(what) not compared")
                return nil
            }
            let command = Command(["python3", "\(tree)/scripts/\(name)", old.path, new.path])
            guard let output = try? await ProcessRunner.capture(command, timeout: .seconds(120)), output.termination.succeeded else {
                change.notes.append("\(command) failed: \(what) not compared")
                return nil
            }
            return output.standardOutput
        }
        let (oldConfig, newConfig) = (artifact(previous, "config"), artifact(cell, "config"))
        if let oldConfig, let newConfig, oldConfig.sha256 != newConfig.sha256 {
            change.configChanged = true
            if let text = await script("diffconfig", oldConfig, newConfig, "the config") {
                change.configDiff = text.split(separator: "\n").map(String.init)
            }
        }
        let (oldVmlinux, newVmlinux) = (artifact(previous, "vmlinux"), artifact(cell, "vmlinux"))
        if let oldVmlinux, let newVmlinux, oldVmlinux.sha256 != newVmlinux.sha256,
           let text = await script("bloat-o-meter", oldVmlinux, newVmlinux, "vmlinux") {
            change.symbols = SymbolSizeDiff.parse(text)
        }
        return change
    }
}

/// The run directories older than the current one, newest first, each read once.
struct EarlierRuns {
    var directories: [String]
    var loaded: [String: RunResults?] = [:]

    init(directory: String, before current: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Run ids start with their UTC time (yyyyMMdd-HHmmss), so names sort by age.
        directories = names.filter { $0 < current && $0 != "latest" }.sorted(by: >).map { "\(directory)/\($0)" }
    }

    /// The newest earlier run whose results have this cell with a kernel built.
    mutating func newest(with cell: String) -> (run: String, cell: CellResult)? {
        for directory in directories {
            if loaded[directory] == nil { loaded[directory] = .some(try? RunResults.load(from: directory)) }
            guard let results = loaded[directory] ?? nil else { continue }
            if let found = results.cells.first(where: { $0.id == cell && $0.kernel != nil }) { return (results.run.id, found) }
        }
        return nil
    }
}
