import Foundation
import KmatrixArchive
import KmatrixCore
import KmatrixTestSupport
import Testing

/// libarchive's secure-symlinks check refuses any symlink on the destination path: a cache
/// folder reached through a link (`~/.cache` on another disk) must still unpack.
@Suite("A cache reached through a symlink")
struct SymlinkedCacheTests {
    static var tarPresent: Bool { ProcessRunner.which("tar") != nil }
    let scratch = NSTemporaryDirectory() + "kmatrix-symlinked-\(UUID().uuidString)"

    /// A tarball of `pkg-1.0/` with a Makefile, a nested file and a symlink inside.
    func fixture() async throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(scratch)/in/pkg-1.0/scripts", withIntermediateDirectories: true)
        try "all:\n".write(toFile: "\(scratch)/in/pkg-1.0/Makefile", atomically: true, encoding: .utf8)
        try "x\n".write(toFile: "\(scratch)/in/pkg-1.0/scripts/tool", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: "\(scratch)/in/pkg-1.0/link", withDestinationPath: "scripts/tool")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "czf", "\(scratch)/pkg.tar.gz", "pkg-1.0"]
        process.currentDirectoryURL = URL(fileURLWithPath: "\(scratch)/in")
        try process.run()
        await process.exited()
        #expect(process.terminationStatus == 0)
        try fm.createDirectory(atPath: "\(scratch)/real-cache", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(scratch)/cache-link", withDestinationPath: "\(scratch)/real-cache")
        return "\(scratch)/pkg.tar.gz"
    }

    @Test(.needs(tools: ["tar"]))
    func sourceTreeUnpacksIntoASymlinkedWorkspace() async throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tarball = try await fixture()
        let source = ResolvedSource(kind: .tarball, path: tarball, sha256: String(repeating: "ab", count: 32), bytes: 0)
        let tree = try await SourceTree.prepare(source, workspace: Workspace(root: "\(scratch)/cache-link"), name: "pkg")
        #expect(FileManager.default.fileExists(atPath: "\(tree)/Makefile"))
        #expect(FileManager.default.fileExists(atPath: "\(scratch)/real-cache/src/pkg-abababababababab/scripts/tool"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(tree)/link") == "scripts/tool")
    }

    @Test(.needs(tools: ["tar"]))
    func extractorAcceptsADestinationThroughASymlink() async throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tarball = try await fixture()
        let summary = try TarballExtractor.extract(tarball, into: "\(scratch)/cache-link/out", stripComponents: 1)
        #expect(summary.entries == 4)
        #expect(FileManager.default.fileExists(atPath: "\(scratch)/real-cache/out/scripts/tool"))
    }
}
