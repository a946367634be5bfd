import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// A cache on a filesystem that fills up: the publish is the host's failure, named as a
/// full disk (exit 3), and nothing partial is ever visible to `lookup`.
@Suite("Full disk")
struct FullDiskTests {
    /// Mounting a tmpfs needs root. CI runs as root and must not skip.
    static var canMount: Bool { getuid() == 0 || ProcessInfo.processInfo.environment["CI"] == "true" }

    func run(_ argv: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()  // mount and umount return at once; a defer cannot await
        return process.terminationStatus
    }

    /// A tmpfs of `megabytes` mounted for `body`, unmounted after.
    func withSmallFilesystem(megabytes: Int, _ body: (String) async throws -> Void) async throws {
        let mountPoint = NSTemporaryDirectory() + "kmatrix-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        try #require(run(["mount", "-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", mountPoint]) == 0)
        defer { _ = run(["umount", mountPoint]) }
        try await body(mountPoint)
    }

    @Test(.needs(.fixture("root, to mount a small tmpfs") { getuid() == 0 }))
    func publishingOnAFullDiskIsAHostFailureAndLeavesNoEntry() async throws {
        try await withSmallFilesystem(megabytes: 8) { mountPoint in
        let cache = ArtifactCache(root: "\(mountPoint)/cache")
        let chunk = Data(repeating: 0x5a, count: 1 << 20)
        // The fill writes 16 MiB into 8 MiB, as a build would, and reports its failure.
        do throws(KmatrixError) {
            let path = try await cache.publish(kind: "kernel.build", key: "big", inputs: ["what": "too big"]) { staging in
                guard let handle = try? SafeFile.createExclusive("\(staging)/vmlinux") else { return false }
                defer { try? handle.close() }
                for _ in 0..<16 { do { try handle.write(contentsOf: chunk) } catch { return false } }
                return true
            }
            Issue.record("published \(path ?? "nil") on a full disk")
        } catch {
            #expect(error.kind == .hostFailure)
            #expect(error.exitCode == 3)
            #expect(error.message.contains("the filesystem at \(mountPoint) is full"), "\(error.message)")
        }
        #expect(cache.lookup(kind: "kernel.build", key: "big") == nil)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(mountPoint)/cache/kernel.build")) ?? []
        #expect(names.isEmpty, "no partial entry or staging folder is left: \(names)")
        #expect(DiskSpace.fullFilesystem(at: mountPoint) == nil, "the space came back")
        }
    }

    /// A fill that ignores a short write still cannot publish: the manifest write fails.
    @Test(.needs(.fixture("root, to mount a small tmpfs") { getuid() == 0 }))
    func aFillThatIgnoresTheFullDiskStillCannotPublish() async throws {
        try await withSmallFilesystem(megabytes: 4) { mountPoint in
        let cache = ArtifactCache(root: "\(mountPoint)/cache")
        await #expect(throws: KmatrixError.self) {
            try await cache.publish(kind: "rootfs", key: "k", inputs: ["a": "b"]) { staging in
                _ = FileManager.default.createFile(atPath: "\(staging)/image", contents: Data(repeating: 1, count: 8 << 20))
                // Fill the rest so even the manifest cannot be written.
                if let handle = try? SafeFile.createExclusive("\(staging)/pad") {
                    while (try? handle.write(contentsOf: Data(repeating: 2, count: 4096))) != nil {}
                    try? handle.close()
                }
                return true
            }
        }
        #expect(cache.lookup(kind: "rootfs", key: "k") == nil)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(mountPoint)/cache/rootfs")) ?? []).isEmpty)
        }
    }
}
