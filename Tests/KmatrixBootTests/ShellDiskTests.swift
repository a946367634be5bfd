import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

/// `kmatrix shell` on a disk cell never writes to the built image: it boots a copy (gone
/// afterwards), or the file `--keep-changes` names. The guest is a stand-in QEMU (named in
/// a scratch target) that writes into whatever `-drive file=` it was given, as a guest
/// that changes its root filesystem would.
@Suite("shell on a disk cell", .serialized, .needs(.kmatrixBinary))
struct ShellDiskTests {
    static let writingQemu = """
        #!/bin/sh
        if [ "$1" = --version ]; then echo "QEMU emulator version 0.0 (stand-in)"; exit 0; fi
        if [ -e "$0.hang" ]; then exec tail -f /dev/null "$0"; fi
        for a in "$@"; do
          case $a in
            file=*) f=${a#file=}; f=${f%%,*}; printf 'guest was here' | dd of="$f" conv=notrunc 2>/dev/null ;;
          esac
        done
        exit 0
        """

    func shell(keepChanges: String?, hang: Bool = false) async throws -> (image: String, before: String, status: Int32, folder: String) {
        let (project, qemu) = try TeardownFixtures.standIn(Self.writingQemu, target: "arm64-virt", replacing: "qemu-system-aarch64",
                                                           flag: hang ? "hang" : nil)
        let folder = project.root
        // What `kmatrix build` and `rootfs` would have left for the cell.
        let cell = "\(folder)/cache/build/arm64-virt/gcc/tiny/virtio"
        try FileManager.default.createDirectory(atPath: "\(cell)/kernel/arch/arm64/boot", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(cell)/images", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(cell)/kernel/arch/arm64/boot/Image", contents: Data("kernel".utf8))
        let image = "\(cell)/images/rootfs.ext2"
        FileManager.default.createFile(atPath: image, contents: Data(count: 64 << 10))
        let before = try SHA256.hex(fileAt: image)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: TeardownFixtures.binary!)
        process.arguments = ["shell", "arm64-virt/gcc/tiny/virtio", "--project", folder, "--matrix", "\(repositoryRoot)/Matrices/root-devices.json",
                             "--cache", "\(folder)/cache", "--accel", "tcg"] + (keepChanges.map { ["--keep-changes", $0] } ?? [])
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        if hang {
            // The console is attached: QEMU shares kmatrix's group and is registered alone.
            let kmatrix = process.processIdentifier
            func started() -> Bool { ProcessTable.all().contains { $0.pid != kmatrix && $0.commandLine.contains(qemu) } }
            for _ in 0..<600 where !started() { try await Task.sleep(for: .milliseconds(50)) }
            #expect(started(), "the stand-in never started")
            kill(kmatrix, SIGTERM)
        }
        await process.exited()
        return (image, before, process.terminationStatus, folder)
    }

    @Test func aCopyIsBootedAndRemoved() async throws {
        let run = try await shell(keepChanges: nil)
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        #expect(run.status == 0)
        #expect(try SHA256.hex(fileAt: run.image) == run.before, "the built image changed")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: "\(run.folder)/cache/runs")) ?? []
        #expect(runs.allSatisfy { !$0.hasPrefix("shell-") }, "the copy was left behind: \(runs)")
    }

    @Test func signalledShellLeavesNothing() async throws {
        let run = try await shell(keepChanges: nil, hang: true)
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        #expect(run.status == 143)
        var left = ProcessTable.left(groups: [], marker: run.folder)
        for _ in 0..<200 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(50))
            left = ProcessTable.left(groups: [], marker: run.folder)
        }
        #expect(left.isEmpty, "left behind: \(left.map(\.commandLine))")
        #expect(try SHA256.hex(fileAt: run.image) == run.before)
    }

    @Test func keepChangesKeepsThemInTheNamedFile() async throws {
        let kept = NSTemporaryDirectory() + "kmatrix-kept-\(UUID().uuidString).ext2"
        defer { try? FileManager.default.removeItem(atPath: kept) }
        let run = try await shell(keepChanges: kept)
        defer { try? FileManager.default.removeItem(atPath: run.folder) }
        #expect(run.status == 0)
        #expect(try SHA256.hex(fileAt: run.image) == run.before, "the built image changed")
        let text = try Data(contentsOf: URL(fileURLWithPath: kept))
        #expect(text.starts(with: Data("guest was here".utf8)), "the guest's write is not in \(kept)")
    }
}
