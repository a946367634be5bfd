import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

/// `kmatrix cache du|verify|gc`: what the artifact cache holds, whether it is intact, and
/// keeping it under a size. Exit status: 0 ok, 1 verify found bad entries (moved aside),
/// 2 bad input, 3 host failure (among others: another run holds the cache).
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect, verify and bound kmatrix's artifact cache.",
        subcommands: [CacheDiskUsage.self, CacheVerify.self, CacheCollect.self, CacheExport.self, CacheImport.self])
}

struct CacheLocation: ParsableArguments {
    @Option(help: "kmatrix's cache folder (default: $KMATRIX_CACHE, else ~/.cache/kmatrix).") var cache: String?

    var workspace: Workspace {
        Workspace(root: cache.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) } ?? Workspace.defaultRoot())
    }
    var store: ArtifactCache { ArtifactCache(root: workspace.cache) }
}

struct CacheDiskUsage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "du", abstract: "Bytes per step kind and in total.")

    @OptionGroup var location: CacheLocation
    @Flag(help: "Print JSON (schema kmatrix-cache-du/1).") var json = false

    struct Usage: Encodable { var kind: String; var entries: Int; var bytes: UInt64 }

    func run() async throws {
        let usage = location.store.diskUsage().map { Usage(kind: $0.kind, entries: $0.entries, bytes: $0.bytes) }
        let total = usage.reduce(0) { $0 + $1.bytes }
        let limit = try CacheLimit.configured(workspaceRoot: location.workspace.root)
        if json {
            struct Report: Encodable { var kinds: [Usage]; var totalBytes: UInt64; var maxBytes: UInt64? }
            try printJSON(Report(kinds: usage, totalBytes: total, maxBytes: limit), schema: "kmatrix-cache-du/1")
            return
        }
        for item in usage {
            print("\(item.kind.padding(toLength: 16, withPad: " ", startingAt: 0)) \(String(item.entries).leftPadded(5)) entries  \(CacheLimit.describe(item.bytes).leftPadded(10))  (\(item.bytes) bytes)")
        }
        print("total \(CacheLimit.describe(total)) (\(total) bytes) in \(location.store.root)" + (limit.map { "; limit \(CacheLimit.describe($0))" } ?? ""))
    }
}

struct CacheVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every entry's files against the sha256 in its manifest; move bad entries aside.",
        discussion: "Exits 1 when an entry was bad: it was moved aside, and the next run rebuilds it.")

    @OptionGroup var location: CacheLocation
    @Option(help: "Only entries of this step kind (kernel.build, busybox.build, rootfs...).") var kind: String?

    func run() async throws {
        let lock = try RunLock(directory: location.workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let store = location.store
        let checked = store.entries().filter { kind == nil || $0.kind == kind }.count
        let bad = await store.verify(kind: kind)
        for entry in bad {
            print("bad \(entry.kind)/\(entry.key): \(entry.problem); " + (entry.movedTo.map { "moved to \($0)" } ?? "removed"))
        }
        print("\(checked) entries checked, \(bad.count) bad")
        if !bad.isEmpty { throw ExitCode(1) }
    }
}

struct CacheCollect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove least recently used entries until the cache fits a size.",
        discussion: "Takes the run lock: it never removes what a running kmatrix uses (exit 3 while one runs).")

    @OptionGroup var location: CacheLocation
    @Option(help: "The size to shrink to: 500M, 20G, 1.5T or bytes (default: $KMATRIX_CACHE_MAX_SIZE, else maxSize in <cache>/config.json).")
    var maxSize: String?
    @Flag(help: "Only list what would be removed.") var dryRun = false

    func run() async throws {
        let limit: UInt64
        if let maxSize {
            limit = try CacheLimit.parse(maxSize, field: "--max-size")
        } else if let configured = try CacheLimit.configured(workspaceRoot: location.workspace.root) {
            limit = configured
        } else {
            throw KmatrixError.badInput("--max-size is needed: no \(CacheLimit.environmentVariable) and no maxSize in \(location.workspace.root)/config.json")
        }
        let lock = try RunLock(directory: location.workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let store = location.store
        if dryRun {
            let total = store.entries().reduce(0) { $0 + $1.bytes }
            print("the cache holds \(CacheLimit.describe(total)); the limit is \(CacheLimit.describe(limit))")
            return
        }
        let collection = try store.collectGarbage(maxBytes: limit)
        for entry in collection.removed { print("removed \(entry.kind)/\(entry.key) (\(CacheLimit.describe(entry.bytes)))") }
        print("\(CacheLimit.describe(collection.bytesBefore)) -> \(CacheLimit.describe(collection.bytesAfter)) (limit \(CacheLimit.describe(limit)))")
    }
}

struct CacheExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write cache entries into one archive another machine imports: named by key, or every cached step of the --cell cells.",
        discussion: """
            KEY is kind/key (kernel.build/3f2a...) or a bare key. With --cell, the cell's cached \
            kernel config, kernel build, busybox build and rootfs image (as `kmatrix plan --json` \
            keys them). Exit status 2 when an entry is missing or damaged.
            """)

    @OptionGroup var options: ProjectOptions
    @Argument(help: "Entries: kind/key or key.") var keys: [String] = []
    @Option(name: .shortAndLong, help: ArgumentHelp("The archive to write (a gzip'd tar).", valueName: "file")) var output: String

    func run() async throws {
        let workspace = options.workspace
        let store = ArtifactCache(root: workspace.cache)
        var refs: [(kind: String, key: String)] = []
        var problems: [KmatrixError] = []
        for name in keys {
            let parts = name.split(separator: "/").map(String.init)
            if parts.count == 2 { refs.append((parts[0], parts[1])); continue }
            let kinds = parts.count == 1 ? store.entries().filter { $0.key == name }.map(\.kind) : []
            guard !kinds.isEmpty else {
                problems.append(.badInput("\(name): no such entry in \(store.root) (give kind/key or a key the cache holds)"))
                continue
            }
            refs += kinds.map { (kind: $0, key: name) }
        }
        if !options.cells.isEmpty {
            let project = try options.load()
            let cells = try options.selectedCells(in: project)
            var settings = RunSettings(jobs: 1)
            settings.boot = false
            let plan = try await MatrixPlan.make(project: project, cells: cells, workspace: workspace, settings: settings)
            let exported: Set<StepKind> = [.kernelConfig, .kernelBuild, .busyboxBuild, .rootfs]
            for cell in plan.cells {
                for step in cell.steps where exported.contains(step.id.kind) {
                    guard let key = step.key, step.cached else {
                        problems.append(.badInput("\(cell.cell): \(step.id) is not in the cache \(store.root) (run it first)"))
                        continue
                    }
                    refs.append((step.id.kind.rawValue, key))
                }
            }
        }
        if refs.isEmpty, problems.isEmpty { problems.append(.badInput("nothing to export: name entries (kind/key) or --cell cells")) }
        if !problems.isEmpty { throw KmatrixErrors(problems) }
        let file = absolutePath(output, relativeTo: FileManager.default.currentDirectoryPath)
        let index = try await CacheTransfer.export(refs, from: store, to: file)
        for entry in index.entries { print("\(entry.kind)/\(entry.key) (\(CacheLimit.describe(entry.bytes)))") }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? UInt64 ?? 0
        print("\(index.entries.count) entries, \(CacheLimit.describe(index.entries.reduce(0) { $0 + $1.bytes })), written to \(file) (\(CacheLimit.describe(bytes)))")
    }
}

struct CacheImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add the entries of an archive made by `kmatrix cache export` to this cache.",
        discussion: """
            Every file is checked against its entry's manifest (size and sha256) before anything \
            is published; a damaged archive imports nothing (exit 2). Entries the cache already \
            holds are kept. Takes the run lock (exit 3 while a run uses the cache).
            """)

    @OptionGroup var location: CacheLocation
    @Argument(help: "The archive.") var file: String

    func run() async throws {
        let lock = try RunLock(directory: location.workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let archive = absolutePath(file, relativeTo: FileManager.default.currentDirectoryPath)
        let imported = try await CacheTransfer.importArchive(archive, into: location.store)
        for entry in imported.added { print("imported \(entry.kind)/\(entry.key) (\(CacheLimit.describe(entry.bytes)))") }
        for entry in imported.present { print("already there \(entry.kind)/\(entry.key)") }
        print("\(imported.added.count) entries imported, \(imported.present.count) already there, into \(location.store.root)")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
