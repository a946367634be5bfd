import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

/// A real guest that fails once and passes when booted again is `flaky`. The arm64 virtio
/// cell of Matrices/root-devices.json (built by the fixture run: no kernel is built here)
/// boots a private copy of its disk whose /init fails while a file on the disk is missing
/// and creates it first; the copy is attached without snapshot=on so the file survives to
/// the next boot. The retries are `BootAttempts.run`, as `--retries` runs them.
@Suite("Flaky boots", .serialized, .needs(tools: ["qemu-system-aarch64", "debugfs"], .fixture("the arm64-virt virtio cell of Matrices/root-devices.json (kmatrix run --matrix Matrices/root-devices.json)") {
    FlakyFixture.images() != nil
}))
struct FlakyBootTests {
    /// Runs `debugfs -w -R request image`; its stderr holds its complaints.
    func debugfs(_ image: String, _ request: String) async throws {
        let result = try await TestProcess.run(try #require(ProcessRunner.which("debugfs")), ["-w", "-R", request, image])
        #expect(result.status == 0, "debugfs \(request): \(result.output)")
    }

    @Test("An init that fails once, then passes, makes the cell flaky with both logs kept")
    func failOnceThenPassIsFlaky() async throws {
        let cell = try #require(FlakyFixture.cell())
        let (kernel, disk) = try #require(FlakyFixture.images())
        let folder = NSTemporaryDirectory() + "kmatrix-flaky-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        // The disk's own /init becomes /init.real; the new /init fails until /flaky-once exists.
        let image = "\(folder)/rootfs.ext2", original = "\(folder)/init.real", flaky = "\(folder)/init"
        // The images folder links into the shared cache: copy the bytes, never the link, and
        // prove at the end that the fixture did not change.
        let fixture = URL(fileURLWithPath: disk).resolvingSymlinksInPath().path
        let fixtureSHA = try SHA256.hex(fileAt: fixture)
        defer { #expect((try? SHA256.hex(fileAt: fixture)) == fixtureSHA, "the test changed the fixture \(fixture)") }
        FileManager.default.createFile(atPath: image, contents: try Data(contentsOf: URL(fileURLWithPath: fixture)))
        try #require((try FileManager.default.attributesOfItem(atPath: image)[.type] as? FileAttributeType) == .typeRegular)
        try await debugfs(image, "dump /init \(original)")
        try """
            #!/bin/sh
            # kmatrix test: fails the first boot, passes the next ones.
            [ -e /flaky-once ] && exec /init.real
            echo first boot > /flaky-once
            sync
            echo "flaky init: failing this boot on purpose"
            exit 1

            """.write(toFile: flaky, atomically: true, encoding: .utf8)
        for file in [original, flaky] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file) }
        try await debugfs(image, "rm /init")
        try await debugfs(image, "write \(flaky) /init")
        try await debugfs(image, "write \(original) /init.real")
        for path in ["/init", "/init.real"] { try await debugfs(image, "sif \(path) mode 0100755") }

        var invocation = QemuInvocation(target: cell.target, rootDevice: cell.rootDevice, kernel: kernel, disk: image)
        invocation.diskSnapshot = false
        let expected = MarkerExpectation(arch: cell.target.userspace.unameMachine,
                                         release: KernelRelease.read(((try? FileManager.default.destinationOfSymbolicLink(atPath: kernel)) ?? kernel)
                                                                        .replacingOccurrences(of: "/Image", with: "/vmlinux")))
        let timeouts = BootTimeouts(cell.target, rootDevice: cell.rootDevice)
        let record = await BootAttempts.run(boots: 1, retries: 2, logPath: "\(folder)/boot.log") { path in
            await BootRunner.run(invocation, logPath: path, timeouts: timeouts, expected: expected)
        }

        #expect(record.outcome == .pass, "\(record.reason)")
        #expect(record.flaky)
        #expect(record.attempts.map(\.outcome) == [.initFailed, .pass], "\(record.attempts)")
        #expect(record.attempts.map(\.logPath) == ["\(folder)/boot.attempt-1.log", "\(folder)/boot.attempt-2.log"])
        let first = try String(contentsOfFile: "\(folder)/boot.attempt-1.log", encoding: .utf8)
        #expect(first.contains("flaky init: failing this boot on purpose"))
        #expect(record.reason.hasPrefix("flaky"))
        #expect(expected.release != nil && record.marker?["release"] == expected.release)
        #expect(CellOutcome.flaky.meets(nil) && !CellOutcome.flaky.meets(.failed(.panic)))
    }
}

/// The fixture cell and its images, apart from the suite (its trait reads them).
enum FlakyFixture {
    static let cellID = "arm64-virt/gcc/tiny/virtio"

    static func cell() -> Cell? {
        (try? Project.load(root: repositoryRoot, matrixFile: "Matrices/root-devices.json"))?.cells.first { $0.id == cellID }
    }

    /// The cell's kernel image and disk image, when the fixture run built them.
    static func images() -> (kernel: String, disk: String)? {
        guard let cell = cell() else { return nil }
        let folder = TestCache.shared.workspace.images(cell)
        let kernel = "\(folder)/\(cell.target.kernel.image.fileName)", disk = "\(folder)/rootfs.\(cell.rootDevice.filesystem ?? "ext2")"
        return FileManager.default.fileExists(atPath: kernel) && FileManager.default.fileExists(atPath: disk) ? (kernel, disk) : nil
    }
}
