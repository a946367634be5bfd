import Foundation
import KmatrixCommands
import KmatrixCore
@testable import KmatrixScheduler
import Testing

/// `kmatrix cache`: 0 ok, 1 verify found bad entries, 2 bad input, 3 the cache is held.
@Suite("kmatrix cache exit statuses")
struct CacheCommandTests {
    let root = NSTemporaryDirectory() + "kmatrix-cache-cmd-\(UUID().uuidString)"

    func entry(_ cache: ArtifactCache, key: String, bytes: Int) async throws -> String {
        let path = try await cache.publish(kind: "kernel.build", key: key, inputs: ["key": key]) { staging in
            FileManager.default.createFile(atPath: "\(staging)/image", contents: Data(repeating: 7, count: bytes))
        }
        return try #require(path)
    }

    @Test func verifyDuAndGc() async throws {
        defer { TreePermissions.makeWritable(root); try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: Workspace(root: root).cache)
        _ = try await entry(cache, key: "old", bytes: 3000)
        let fresh = try await entry(cache, key: "new", bytes: 3000)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)],
                                              ofItemAtPath: "\(cache.entry(kind: "kernel.build", key: "old"))/\(CacheEntryManifest.fileName)")
        #expect(await KmatrixMain.run(["cache", "du", "--cache", root]) == 0)
        #expect(await KmatrixMain.run(["cache", "verify", "--cache", root]) == 0)
        #expect(await KmatrixMain.run(["cache", "gc", "--cache", root, "--max-size", "lots"]) == 2)
        #expect(await KmatrixMain.run(["cache", "gc", "--cache", root, "--max-size", "4K"]) == 0)
        #expect(cache.entries().map(\.key) == ["new"], "the least recently used went")

        do {
            let lock = try RunLock(directory: root)
            #expect(await KmatrixMain.run(["cache", "gc", "--cache", root, "--max-size", "1"]) == 3, "a running kmatrix holds the cache")
            withExtendedLifetime(lock) {}
        }

        TreePermissions.makeWritable(fresh)
        try Data(repeating: 8, count: 3000).write(to: URL(fileURLWithPath: "\(fresh)/image"))
        #expect(await KmatrixMain.run(["cache", "verify", "--cache", root, "--kind", "kernel.build"]) == 1)
        #expect(cache.entries().isEmpty, "the bad entry was moved aside")
        #expect(await KmatrixMain.run(["cache", "verify", "--cache", root]) == 0)
    }
}
