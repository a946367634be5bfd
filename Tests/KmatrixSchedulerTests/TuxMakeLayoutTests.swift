import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixKernel
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// A real published kernel build written as TuxMake's layout, then read back by `kmatrix
/// boot --tuxmake`'s reader: the round trip a TuxRun user makes.
@Suite("TuxMake layout")
struct TuxMakeLayoutTests {
    static let cellID = "arm-vexpress-a9/gcc/tiny/initramfs"

    /// The shared cache's published build of the cell (kernel.json names its files).
    static func publishedRecord() -> KernelBuildRecord? {
        let entries = "\(TestCache.shared.root)/cache/kernel.build"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: entries)) ?? [] {
            guard let data = FileManager.default.contents(atPath: "\(entries)/\(entry)/kernel.json"),
                  let record = try? JSONDecoder().decode(KernelBuildRecord.self, from: data),
                  record.cell == cellID, record.succeeded else { continue }
            return record
        }
        return nil
    }

    @Test(.needs(tools: ["tar", "xz"], .fixture("the published \(cellID) kernel build (made by kmatrix run)") { publishedRecord() != nil }))
    func aBuildWrittenAsTuxMakeBootsFromItsLayout() async throws {
        let record = try #require(Self.publishedRecord())
        let project = try Project.load(root: repositoryRoot)
        let cell = try #require(project.cells.first { $0.id == Self.cellID })
        let root = NSTemporaryDirectory() + "kmatrix-tuxmake-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = "\(root)/\(TuxMakeLayout.folderName(cell.id))"
        let metadata = try await TuxMakeLayout.write(record, cell: cell, to: directory)

        #expect(directory.hasSuffix("/arm-vexpress-a9-gcc-tiny-initramfs"))
        #expect(metadata.results.status == "PASS")
        #expect(metadata.build.target_arch == "arm")
        #expect(metadata.build.toolchain == "gcc")
        #expect(metadata.build.kconfig == "tinyconfig")
        #expect(metadata.build.kconfig_add.contains("CONFIG_SERIAL_AMBA_PL011=y"))
        #expect(metadata.results.artifacts["kernel"] == ["zImage"])
        #expect(metadata.results.artifacts["dtbs"] == ["dtbs.tar.xz"])
        #expect(metadata.results.warnings == record.warnings)
        let sizes = try #require(metadata.vmlinux)
        #expect(sizes.text_size > 0 && sizes.file_size > sizes.text_size)
        for file in ["metadata.json", "config", "zImage", "System.map", "build.log", "dtbs/vexpress-v2p-ca9.dtb", "dtbs.tar.xz"] {
            #expect(FileManager.default.fileExists(atPath: "\(directory)/\(file)"), "\(file) is missing")
        }
        // The config is the one the build used, byte for byte.
        #expect(FileManager.default.contentsEqual(atPath: "\(directory)/config", andPath: try #require(record.artifacts.config)))

        // What `kmatrix boot --tuxmake` reads: the kernel and the target's DTB, from dtbs/ and,
        // with dtbs/ gone, from dtbs.tar.xz.
        let images = try await BootImages.fromTuxMake(directory, target: cell.target, scratch: "\(root)/scratch")
        #expect(images.kernel == "\(directory)/zImage")
        #expect(images.dtb == "\(directory)/dtbs/vexpress-v2p-ca9.dtb")
        try FileManager.default.removeItem(atPath: "\(directory)/dtbs")
        let fromTarball = try await BootImages.fromTuxMake(directory, target: cell.target, scratch: "\(root)/scratch")
        let dtb = try #require(fromTarball.dtb)
        #expect(FileManager.default.contentsEqual(atPath: dtb, andPath: try #require(record.artifacts.dtbs["vexpress-v2p-ca9.dtb"])))

        // The metadata reads back as written (TuxMake's field names, snake case).
        let decoded = try JSONDecoder().decode(TuxMakeLayout.Metadata.self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/metadata.json")))
        #expect(decoded == metadata)
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/metadata.json"))) as? [String: Any])
        #expect(Set(raw.keys).isSuperset(of: ["build", "compiler", "results", "vmlinux"]))
    }
}
