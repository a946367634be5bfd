import Foundation
import KmatrixArchive
import KmatrixCore
import KmatrixUserspace
import Testing

/// Output files are created, never opened: a file or a planted symlink under the name is
/// an error, and what the link points at is left alone.
@Suite("Exclusive output files")
struct ExclusiveOutputTests {
    @Test func theCpioWriterRefusesAPlantedSymlink() throws {
        let dir = try scratchFolder("excl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("precious".utf8).write(to: URL(fileURLWithPath: "\(dir)/victim"))
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/out.cpio", withDestinationPath: "\(dir)/victim")
        #expect(throws: ArchiveError.self) { _ = try CpioNewcWriter(path: "\(dir)/out.cpio", compression: .none) }
        #expect(FileManager.default.contents(atPath: "\(dir)/victim") == Data("precious".utf8))
    }

    /// The initramfs goes to a fresh temporary name and is renamed over the output, packed
    /// off the cooperative pool.
    @Test func initramfsIsPackedOffThePoolAndReplacesTheOutput() async throws {
        let dir = try scratchFolder("excl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n".write(toFile: "\(dir)/list", atomically: true, encoding: .utf8)
        let tree = try CpioList.parse(file: "\(dir)/list", environment: [:])
        try Data("old".utf8).write(to: URL(fileURLWithPath: "\(dir)/initramfs.cpio.gz"))
        let record = try await InitramfsWriter.writeOffThePool(tree, to: "\(dir)/initramfs.cpio.gz")
        #expect(record.entries >= 2)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/initramfs.cpio.gz"))
        #expect(Array(bytes.prefix(2)) == [0x1f, 0x8b])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["initramfs.cpio.gz", "list"])
    }
}
