import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix cache export|import`: entries carried in one libarchive-written archive and
/// checked against their manifests on the way in.
@Suite("Cache export and import")
struct CacheTransferTests {
    /// A cache with two published entries: a folder with a nested file and a symlink, and a single file.
    func filledCache() async throws -> (TestCache, ArtifactCache) {
        let cache = try TestCache.private("export")
        let store = ArtifactCache(root: cache.workspace.cache)
        _ = try await store.publish(kind: "kernel.build", key: String(repeating: "a", count: 64), inputs: ["cell": "x"]) { staging in
            try? FileManager.default.createDirectory(atPath: "\(staging)/dtbs", withIntermediateDirectories: true)
            try? Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: "\(staging)/Image"))
            try? "dtb".write(toFile: "\(staging)/dtbs/board.dtb", atomically: true, encoding: .utf8)
            try? FileManager.default.createSymbolicLink(atPath: "\(staging)/zImage", withDestinationPath: "Image")
            return true
        }
        _ = try await store.publish(kind: "rootfs", key: String(repeating: "b", count: 64), inputs: ["kind": "initramfs"]) { staging in
            (try? "cpio".write(toFile: "\(staging)/initramfs.cpio.gz", atomically: true, encoding: .utf8)) != nil
        }
        return (cache, store)
    }

    var refs: [(kind: String, key: String)] {
        [("kernel.build", String(repeating: "a", count: 64)), ("rootfs", String(repeating: "b", count: 64))]
    }

    func run(_ argv: [String]) async throws -> Int32 {
        try await TestProcess.run("/usr/bin/env", argv).status
    }

    @Test func exportedEntriesImportIntoAnEmptyCacheAndAreHits() async throws {
        let (source, store) = try await filledCache()
        let target = try TestCache.private("import")
        defer { source.remove(); target.remove() }
        let archive = "\(source.root)/entries.tar.gz"
        let index = try await CacheTransfer.export(refs, from: store, to: archive)
        #expect(index.entries.map(\.kind) == ["kernel.build", "rootfs"])
        let destination = ArtifactCache(root: target.workspace.cache)
        let imported = try await CacheTransfer.importArchive(archive, into: destination)
        #expect(imported.added.count == 2 && imported.present.isEmpty)
        let entry = try #require(destination.lookup(kind: "kernel.build", key: String(repeating: "a", count: 64)))
        #expect(FileManager.default.contents(atPath: "\(entry)/Image") == Data(repeating: 7, count: 300_000))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(entry)/zImage") == "Image")
        #expect(await destination.verify().isEmpty)
        // Imported entries are published like built ones: read-only.
        #expect(access("\(entry)/Image", W_OK) != 0 || getuid() == 0)
        #expect(((try FileManager.default.attributesOfItem(atPath: "\(entry)/Image"))[.posixPermissions] as? Int) == 0o444)
        // A second import keeps what is there.
        let again = try await CacheTransfer.importArchive(archive, into: destination)
        #expect(again.added.isEmpty && again.present.count == 2)
    }

    @Test func aTruncatedArchiveIsRejectedAndNothingImported() async throws {
        let (source, store) = try await filledCache()
        let target = try TestCache.private("import")
        defer { source.remove(); target.remove() }
        let archive = "\(source.root)/entries.tar.gz"
        _ = try await CacheTransfer.export(refs, from: store, to: archive)
        let data = try #require(FileManager.default.contents(atPath: archive))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: archive))
        let destination = ArtifactCache(root: target.workspace.cache)
        let error = await #expect(throws: KmatrixError.self) { try await CacheTransfer.importArchive(archive, into: destination) }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("\(archive) is not a readable kmatrix cache archive (damaged or truncated?)") == true, "\(String(describing: error))")
        #expect(destination.entries().isEmpty)
    }

    @Test(.needs(tools: ["tar"]))
    func anEntryWhoseFileChangedIsRejectedNamingIt() async throws {
        let (source, store) = try await filledCache()
        let target = try TestCache.private("import")
        defer { source.remove(); target.remove() }
        let archive = "\(source.root)/entries.tar.gz"
        _ = try await CacheTransfer.export(refs, from: store, to: archive)
        // Unpacked, one byte of the image changed (same size), packed again with tar.
        let unpacked = "\(source.root)/unpacked"
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        #expect(try await run(["tar", "-xzf", archive, "-C", unpacked]) == 0)
        let image = "\(unpacked)/kernel.build/\(String(repeating: "a", count: 64))/Image"
        #expect(try await run(["chmod", "-R", "u+w", unpacked]) == 0)
        var bytes = try #require(FileManager.default.contents(atPath: image))
        bytes[1000] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: image))
        let tampered = "\(source.root)/tampered.tar.gz"
        #expect(try await run(["tar", "-czf", tampered, "-C", unpacked, "."]) == 0)
        let destination = ArtifactCache(root: target.workspace.cache)
        let error = await #expect(throws: KmatrixError.self) { try await CacheTransfer.importArchive(tampered, into: destination) }
        #expect(error?.kind == .badInput)
        let message = error?.message ?? ""
        #expect(message.contains("entries that do not match their manifests, nothing imported"), "\(message)")
        #expect(message.contains("kernel.build/\(String(repeating: "a", count: 64)):") && message.contains("Image"), "\(message)")
        #expect(destination.entries().isEmpty)
    }

    @Test(.needs(tools: ["tar"]))
    func anArchiveWithoutAnIndexIsNotACacheArchive() async throws {
        let target = try TestCache.private("import")
        defer { target.remove() }
        let archive = "\(target.root)/other.tar.gz"
        try "hello".write(toFile: "\(target.root)/README", atomically: true, encoding: .utf8)
        #expect(try await run(["tar", "-czf", archive, "-C", target.root, "README"]) == 0)
        let error = await #expect(throws: KmatrixError.self) {
            try await CacheTransfer.importArchive(archive, into: ArtifactCache(root: target.workspace.cache))
        }
        #expect(error?.message.contains("is not a kmatrix cache archive: it has no kmatrix-cache-archive.json") == true)
    }

    @Test func exportingAnEntryTheCacheDoesNotHoldIsBadInput() async throws {
        let (source, store) = try await filledCache()
        defer { source.remove() }
        let error = await #expect(throws: KmatrixError.self) {
            try await CacheTransfer.export([("kernel.build", String(repeating: "f", count: 64))], from: store, to: "\(source.root)/x.tar.gz")
        }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("kernel.build/\(String(repeating: "f", count: 64)): not in the cache") == true)
        #expect(!FileManager.default.fileExists(atPath: "\(source.root)/x.tar.gz"))
    }
}
