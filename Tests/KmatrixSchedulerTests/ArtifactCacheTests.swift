import Foundation
import KmatrixCore
import KmatrixCrypto
@testable import KmatrixScheduler
import Testing

@Suite("Artifact cache and run lock")
struct ArtifactCacheTests {
    let root = NSTemporaryDirectory() + "kmatrix-cache-test-\(UUID().uuidString)"

    struct Inputs: Encodable { var source: String; var options: [String: String] }
    struct Unencodable: Encodable { var ratio = Double.nan }

    /// Publishes an entry holding `files` (name -> contents).
    func publish(_ cache: ArtifactCache, kind: String = "kernel.build", key: String, files: [String: String]) async throws -> String {
        let path = try await cache.publish(kind: kind, key: key, inputs: Inputs(source: key, options: [:])) { staging in
            for (name, text) in files {
                let folder = ("\(staging)/\(name)" as NSString).deletingLastPathComponent
                try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: "\(staging)/\(name)", contents: Data(text.utf8)) else { return false }
            }
            return true
        }
        return try #require(path)
    }

    func leftovers(_ kind: String = "kernel.build") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? []).filter { $0.hasPrefix(".") }
    }

    @Test func keysDependOnContentNotOrder() throws {
        let a = try ArtifactCache.key(Inputs(source: "s", options: ["A": "y", "B": "n"]))
        let b = try ArtifactCache.key(Inputs(source: "s", options: ["B": "n", "A": "y"]))
        let c = try ArtifactCache.key(Inputs(source: "s", options: ["A": "y", "B": "y"]))
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 64)
    }

    @Test func aKeyNeverHashesNothing() {
        #expect(throws: KmatrixError.self) { try ArtifactCache.key(Unencodable()) }
    }

    @Test func publishesAtomicallyAndNeverCachesFailures() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let inputs = Inputs(source: "s", options: [:])
        let key = try ArtifactCache.key(inputs)
        #expect(cache.lookup(kind: "kernel.build", key: key) == nil)
        let failed = try await cache.publish(kind: "kernel.build", key: key, inputs: inputs) { staging in
            _ = FileManager.default.createFile(atPath: "\(staging)/half", contents: Data("x".utf8))
            return false
        }
        #expect(failed == nil)
        #expect(cache.lookup(kind: "kernel.build", key: key) == nil)
        let path = try await publish(cache, key: key, files: ["bzImage": "kernel", "dtbs/a.dtb": "dtb"])
        #expect(path == cache.lookup(kind: "kernel.build", key: key))
        #expect(FileManager.default.contents(atPath: "\(path)/bzImage") == Data("kernel".utf8))
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(root)/kernel.build")
        #expect(names == [key], "nothing half-made is left beside it")
        let manifest = try #require(CacheEntryManifest.read(entry: path))
        #expect(manifest.format == CacheEntryManifest.currentFormat)
        #expect(manifest.files.map(\.path) == ["bzImage", "dtbs/a.dtb"])
        #expect(manifest.files.first?.size == 6)
        #expect(manifest.files.first?.sha256 == SHA256.hex("kernel"))
    }

    @Test func publishedEntriesAreReadOnlyAndCleanRemovesThem() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let path = try await publish(cache, key: "k", files: ["bzImage": "kernel", "dtbs/a.dtb": "dtb"])
        func mode(_ p: String) throws -> Int { try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as! Int }
        #expect(try mode(path) == 0o555)
        #expect(try mode("\(path)/dtbs") == 0o555)
        #expect(try mode("\(path)/bzImage") == 0o444)
        #expect(try mode("\(path)/\(CacheEntryManifest.fileName)") == 0o444)
        try TreePermissions.remove(path)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// Each kind of damage: found by the size check of `lookup`, moved aside, read as a miss.
    @Test(arguments: ["truncated", "corrupted manifest", "deleted file", "missing manifest"])
    func aBadEntryIsMovedAsideAndMissed(damage: String) async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let path = try await publish(cache, key: "k", files: ["vmlinux": String(repeating: "v", count: 4096), "System.map": "map"])
        TreePermissions.makeWritable(path)
        switch damage {
        case "truncated": #expect(truncate("\(path)/vmlinux", 100) == 0)
        case "corrupted manifest": try Data("{\"format\": 2, \"fil".utf8).write(to: URL(fileURLWithPath: "\(path)/\(CacheEntryManifest.fileName)"))
        case "deleted file": try FileManager.default.removeItem(atPath: "\(path)/System.map")
        default: try FileManager.default.removeItem(atPath: "\(path)/\(CacheEntryManifest.fileName)")
        }
        #expect(cache.lookup(kind: "kernel.build", key: "k") == nil, "a \(damage) entry is never served")
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(leftovers().contains { $0.hasPrefix(".bad-k-") }, "moved aside, not lost: \(leftovers())")
        // The step rebuilds it under the same key.
        let rebuilt = try await publish(cache, key: "k", files: ["vmlinux": "new"])
        #expect(cache.lookup(kind: "kernel.build", key: "k") == rebuilt)
        cache.sweepStaging()
        #expect(leftovers().isEmpty)
    }

    /// Same size, other bytes: a `lookup` that checks sizes only (entries above
    /// `hashCheckedBytes`) cannot see it; `verify` (hashes) does.
    @Test func verifyFindsWhatSizesCannot() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root, hashCheckedBytes: 0)
        let bad = try await publish(cache, key: "bad", files: ["image": "aaaa"])
        _ = try await publish(cache, kind: "rootfs", key: "good", files: ["image": "bbbb"])
        TreePermissions.makeWritable(bad)
        try Data("aaab".utf8).write(to: URL(fileURLWithPath: "\(bad)/image"))
        #expect(cache.lookup(kind: "kernel.build", key: "bad") == bad)
        #expect(await cache.verify(kind: "rootfs").isEmpty)
        let found = await cache.verify()
        #expect(found.map(\.key) == ["bad"])
        #expect(found.first?.problem.contains("sha256") == true)
        #expect(cache.lookup(kind: "kernel.build", key: "bad") == nil)
        #expect(cache.lookup(kind: "rootfs", key: "good") != nil)
    }

    /// A small entry (a rootfs image a guest wrote to, a config) is hashed on every lookup.
    @Test func lookupHashesSmallEntries() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let bad = try await publish(cache, key: "small", files: ["image": "aaaa"])
        TreePermissions.makeWritable(bad)
        try Data("aaab".utf8).write(to: URL(fileURLWithPath: "\(bad)/image"))
        #expect(cache.lookup(kind: "kernel.build", key: "small") == nil)
    }

    /// Two publishers of one key at once: both get the one entry, nothing is left over.
    @Test func aSecondPublisherCountsAsPublished() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let paths = try await withThrowingTaskGroup(of: String?.self) { group in
            for index in 0..<4 {
                group.addTask {
                    try await cache.publish(kind: "busybox.build", key: "same", inputs: Inputs(source: "s", options: [:])) { staging in
                        try? await Task.sleep(for: .milliseconds(200))
                        return FileManager.default.createFile(atPath: "\(staging)/busybox", contents: Data("bb\(index)".utf8))
                    }
                }
            }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(Set(paths) == [cache.entry(kind: "busybox.build", key: "same")])
        #expect(cache.lookup(kind: "busybox.build", key: "same") != nil)
        #expect(leftovers("busybox.build").isEmpty, "staging folders discarded: \(leftovers("busybox.build"))")
    }

    /// Least recently used first, never a kept key; a lookup counts as a use.
    @Test func garbageCollectionRemovesLeastRecentlyUsedFirst() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let kilobyte = String(repeating: "x", count: 1000)
        for key in ["a", "b", "c", "d"] { _ = try await publish(cache, key: key, files: ["f": kilobyte]) }
        // Ages: a oldest ... d newest; then a lookup of b makes it the newest.
        for (index, key) in ["a", "b", "c", "d"].enumerated() {
            let date = Date(timeIntervalSinceNow: Double(index - 10) * 60)
            try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: "\(cache.entry(kind: "kernel.build", key: key))/\(CacheEntryManifest.fileName)")
        }
        #expect(cache.lookup(kind: "kernel.build", key: "b") != nil)
        #expect(cache.diskUsage().first?.bytes == 4000)
        let first = try cache.collectGarbage(maxBytes: 2500, keeping: ["a"])
        #expect(first.removed.map(\.key) == ["c", "d"], "a is kept, b was just used")
        #expect(first.bytesBefore == 4000 && first.bytesAfter == 2000)
        let second = try cache.collectGarbage(maxBytes: 0, keeping: ["a"])
        #expect(second.removed.map(\.key) == ["b"])
        #expect(cache.entries().map(\.key) == ["a"])
    }

    @Test func anInterruptedEntryIsNotTakenForFinished() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        try FileManager.default.createDirectory(atPath: cache.entry(kind: "rootfs", key: "k"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/rootfs/.staging-k-1-2", withIntermediateDirectories: true)
        #expect(cache.lookup(kind: "rootfs", key: "k") == nil)
        cache.sweepStaging()
        #expect(leftovers("rootfs").isEmpty)
    }

    @Test func aSecondRunOnTheSameCacheIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = try RunLock(directory: root)
        #expect(throws: KmatrixError.self) { try RunLock(directory: root) }
        withExtendedLifetime(first) {}
    }
}
