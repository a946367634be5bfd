import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

/// A boot never changes what it boots. The probe kernel (Debian's cloud kernel) has its
/// block and filesystem drivers as modules and cannot mount a disk root, so the write
/// comes from QEMU's monitor instead: `qemu-io DRIVE "write …"` goes through the same
/// block layer a guest's writes do, on the exact command line kmatrix derives.
@Suite("Disk roots are attached read-only for the image", .serialized,
       .needs(tools: ["qemu-system-x86_64"], .probeKernel))
struct DiskSnapshotTests {
    /// Runs the boot's QEMU halted (`-S`) with the monitor on stdin, writes 4 KiB of 0xAB
    /// at offset 0 of the root drive, quits; returns the monitor's transcript.
    func writeThroughQemu(_ invocation: QemuInvocation) async throws -> String {
        var argv = invocation.command.argv
        let serial = try #require(argv.firstIndex(of: "-serial"))
        argv.replaceSubrange(serial...(serial + 1), with: ["-serial", "none", "-monitor", "stdio"])
        argv.append("-S")
        let drive = try #require(argv.indices.first { $0 > 0 && argv[$0 - 1] == "-drive" }.map { argv[$0] })
        let id = try #require(drive.split(separator: ",").first { $0.hasPrefix("id=") }.map { String($0.dropFirst(3)) })
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ProcessRunner.which(argv[0])))
        process.arguments = Array(argv.dropFirst())
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data("qemu-io \(id) \"write -P 0xab 0 4096\"\nquit\n".utf8))
        let transcript = String(decoding: await output.fileHandleForReading.readAll(), as: UTF8.self)
        await process.exited()
        return transcript
    }

    func sha256(_ path: String) throws -> String {
        try SHA256.hex(fileAt: path)
    }

    @Test("A write to the root disk leaves the image's sha256 unchanged (and changes it without snapshot=on)")
    func guestWritesNeverReachTheImage() async throws {
        let project = try Project.load(root: repositoryRoot)
        let target = try #require(project.targets["x86_64-pc"])
        let device = try #require(target.rootDevices.values.first { $0.kind == .disk })
        // A comma in the folder: the path must reach QEMU escaped.
        let folder = NSTemporaryDirectory() + "kmatrix-disk-\(UUID().uuidString)/a,b"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
        let image = "\(folder)/rootfs.ext2"
        FileManager.default.createFile(atPath: image, contents: Data(count: 1 << 20))
        let before = try sha256(image)

        var invocation = QemuInvocation(target: target, rootDevice: device, kernel: TeardownFixtures.probeKernel, disk: image)
        let transcript = try await writeThroughQemu(invocation)
        #expect(transcript.contains("wrote 4096/4096 bytes"), "QEMU did not write: \(transcript)")
        #expect(try sha256(image) == before, "the image changed under snapshot=on")

        // The control: the same write without the snapshot does reach the file.
        invocation.diskSnapshot = false
        let control = try await writeThroughQemu(invocation)
        #expect(control.contains("wrote 4096/4096 bytes"), "QEMU did not write: \(control)")
        #expect(try sha256(image) != before, "the control write did not reach the image: the check proves nothing")
    }
}
