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
        subcommands: [CacheDiskUsage.self, CacheVerify.self, CacheCollect.self])
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
    @Flag(help: "Print JSON.") var json = false

    struct Usage: Encodable { var kind: String; var entries: Int; var bytes: UInt64 }

    func run() async throws {
        let usage = location.store.diskUsage().map { Usage(kind: $0.kind, entries: $0.entries, bytes: $0.bytes) }
        let total = usage.reduce(0) { $0 + $1.bytes }
        let limit = try CacheLimit.configured(workspaceRoot: location.workspace.root)
        if json {
            struct Report: Encodable { var kinds: [Usage]; var totalBytes: UInt64; var maxBytes: UInt64? }
            try printJSON(Report(kinds: usage, totalBytes: total, maxBytes: limit))
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

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
