import Foundation
import KmatrixArchive
import KmatrixTestSupport
import Testing

/// Builds small tarballs with the system tar (an independent writer) and extracts them with
/// kmatrix's libarchive extractor.
@Suite("tarball extraction")
struct TarballExtractorTests {
    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "kmatrix-extract-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func tar(_ arguments: [String], in directory: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        await process.exited()
        #expect(process.terminationStatus == 0, "tar \(arguments)")
    }

    /// A tree with an executable script, a symlink, a hard link and a nested folder.
    func makeTree(_ root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/pkg-1.0/scripts/kconfig", withIntermediateDirectories: true)
        try "#!/bin/sh\necho hi\n".write(toFile: "\(root)/pkg-1.0/scripts/kconfig/merge_config.sh", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(root)/pkg-1.0/scripts/kconfig/merge_config.sh")
        try "data\n".write(toFile: "\(root)/pkg-1.0/README", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(root)/pkg-1.0/README")
        try fm.createSymbolicLink(atPath: "\(root)/pkg-1.0/scripts/link", withDestinationPath: "kconfig/merge_config.sh")
        try fm.linkItem(atPath: "\(root)/pkg-1.0/README", toPath: "\(root)/pkg-1.0/README.hard")
    }

    @Test(.needs(tools: ["tar"]),
          arguments: [("czf", "tar.gz"), ("cJf", "tar.xz"), ("cjf", "tar.bz2")])
    func extractsCompressedTarballsWithModesAndLinks(flag: String, suffix: String) async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeTree("\(dir)/in")
        try await tar([flag, "\(dir)/pkg.\(suffix)", "pkg-1.0"], in: "\(dir)/in")

        let out = "\(dir)/out/nested"
        let summary = try TarballExtractor.extract("\(dir)/pkg.\(suffix)", into: out, stripComponents: 1)
        #expect(summary.entries == 6, "the stripped top folder itself is not counted")
        #expect(summary.bytes == UInt64("#!/bin/sh\necho hi\n".utf8.count + "data\n".utf8.count))
        let fm = FileManager.default
        #expect(fm.isExecutableFile(atPath: "\(out)/scripts/kconfig/merge_config.sh"))
        #expect(!fm.isExecutableFile(atPath: "\(out)/README"))
        #expect(try fm.destinationOfSymbolicLink(atPath: "\(out)/scripts/link") == "kconfig/merge_config.sh")
        let a = try fm.attributesOfItem(atPath: "\(out)/README")[.systemFileNumber] as? Int
        let b = try fm.attributesOfItem(atPath: "\(out)/README.hard")[.systemFileNumber] as? Int
        #expect(a != nil && a == b, "the hard link survives stripping")
        #expect(!fm.fileExists(atPath: "\(out)/pkg-1.0"))
    }

    @Test(.needs(tools: ["tar"]))
    func refusesDotDotEscapes() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in/a", withIntermediateDirectories: true)
        try "x".write(toFile: "\(dir)/in/evil", atomically: true, encoding: .utf8)
        // -P keeps the `..` that GNU tar would otherwise strip.
        try await tar(["-P", "-cf", "\(dir)/evil.tar", "a/../evil"], in: "\(dir)/in")
        #expect {
            _ = try TarballExtractor.extract("\(dir)/evil.tar", into: "\(dir)/out")
        } throws: { error in
            "\(error)".contains("..")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/evil"))
    }

    @Test(.needs(tools: ["tar"]))
    func refusesAbsolutePaths() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        try "x".write(toFile: "\(dir)/in/abs", atomically: true, encoding: .utf8)
        try await tar(["-P", "-cf", "\(dir)/abs.tar", "\(dir)/in/abs"], in: "\(dir)/in")
        let error = #expect(throws: ArchiveError.self) {
            _ = try TarballExtractor.extract("\(dir)/abs.tar", into: "\(dir)/out")
        }
        #expect(error?.message.contains("absolute") == true)
    }

    @Test func missingArchiveCarriesLibarchiveMessage() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: ArchiveError.self) {
            _ = try TarballExtractor.extract("\(dir)/absent.tar.xz", into: "\(dir)/out")
        }
        #expect(error?.description.contains("absent.tar.xz") == true)
        #expect(error?.message.contains("No such file") == true || error?.message.contains("Failed to open") == true)
    }

    @Test func garbageIsAnError() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: "\(dir)/junk.tar.gz"))
        #expect(throws: ArchiveError.self) {
            _ = try TarballExtractor.extract("\(dir)/junk.tar.gz", into: "\(dir)/out")
        }
    }

    /// The real kernel tarball, as kmatrix's extractor unpacked it into the shared test cache
    /// for the fixture run (SourceTree.prepare, strip 1): every entry, modes and symlinks.
    @Test(.needs(.unpackedKernel))
    func extractedTheKernelTarball() throws {
        let tree = try #require(TestCache.shared.unpackedKernel)
        var entries = 0
        let walk = try #require(FileManager.default.enumerator(atPath: tree))
        while walk.nextObject() != nil { entries += 1 }
        #expect(entries > 70_000)
        #expect(FileManager.default.isExecutableFile(atPath: "\(tree)/scripts/kconfig/merge_config.sh"))
        #expect(FileManager.default.fileExists(atPath: "\(tree)/Makefile"))
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "\(tree)/scripts/dtc/include-prefixes/arm64")
        #expect(link.hasSuffix("arm64/boot/dts"))
    }
}
