import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// The derived QEMU command lines must match the recipes measured in the field notes.
@Suite("QEMU command lines from the descriptors")
struct QemuCommandTests {
    let targets: [String: Target]
    init() throws { targets = try Project.load(root: repositoryRoot).targets }

    func invocation(_ name: String, root: String = "initramfs", dtb: String? = nil) throws -> QemuInvocation {
        let target = try #require(targets[name])
        let device = try #require(target.rootDevices[root])
        return QemuInvocation(target: target, rootDevice: device, kernel: "K", dtb: dtb,
                              initrd: device.kind == .disk ? nil : "I", disk: device.kind == .disk ? "D" : nil)
    }

    let common = ["-nodefaults", "-nographic", "-serial", "stdio", "-no-reboot"]

    @Test func x86_64() throws {
        #expect(try invocation("x86_64-pc").command.argv ==
            ["qemu-system-x86_64", "-M", "pc", "-accel", "tcg", "-m", "256", "-smp", "1"] + common
            + ["-kernel", "K", "-initrd", "I", "-append", "console=ttyS0 panic=-1 rdinit=/init no_timer_check"])
    }

    @Test func armVexpressWithItsDTB() throws {
        #expect(try invocation("arm-vexpress-a9", dtb: "vexpress-v2p-ca9.dtb").command.argv ==
            ["qemu-system-arm", "-M", "vexpress-a9", "-accel", "tcg", "-m", "256", "-smp", "1"] + common
            + ["-audiodev", "none,id=snd0", "-kernel", "K", "-dtb", "vexpress-v2p-ca9.dtb", "-initrd", "I",
               "-append", "console=ttyAMA0 panic=-1 rdinit=/init"])
    }

    @Test func arm64Virt() throws {
        #expect(try invocation("arm64-virt").command.argv ==
            ["qemu-system-aarch64", "-M", "virt", "-accel", "tcg", "-cpu", "cortex-a57", "-m", "256", "-smp", "1"] + common
            + ["-kernel", "K", "-initrd", "I", "-append", "console=ttyAMA0 panic=-1 rdinit=/init"])
    }

    @Test func riscv64VirtWithOpenSBI() throws {
        #expect(try invocation("riscv64-virt").command.argv ==
            ["qemu-system-riscv64", "-M", "virt", "-accel", "tcg", "-m", "256", "-smp", "1"] + common
            + ["-bios", "default", "-kernel", "K", "-initrd", "I", "-append", "console=ttyS0 panic=-1 rdinit=/init riscv_isa_fallback"])
    }

    /// A target's own command-line words (riscv's `riscv_isa_fallback`, without which a 6.6+
    /// kernel on QEMU 7.2 runs busybox with no FPU: SIGILL in init) come after kmatrix's.
    @Test func aTargetsOwnKernelArgumentsAreAppended() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/riscv64-virt.json", replacing: "\"append\": [\"riscv_isa_fallback\"]", with: "\"append\": [\"a b\"]")
        #expect(p.loadErrors().first?.contains("qemu.append: 'a b' is not one kernel command-line word") == true, "\(p.loadErrors())")
    }

    @Test func sdCardRootOnVexpress() throws {
        let argv = try invocation("arm-vexpress-a9", root: "sd", dtb: "x.dtb").command.argv
        #expect(argv.contains("file=D,if=sd,format=raw,snapshot=on"))
        #expect(!argv.contains("-initrd"))
        #expect(argv.last == "console=ttyAMA0 panic=-1 root=/dev/mmcblk0 rw rootfstype=ext2 rootwait init=/init")
    }

    @Test func ramdiskRoot() throws {
        let argv = try invocation("x86_64-pc", root: "ramdisk").command.argv
        #expect(argv.last == "console=ttyS0 panic=-1 root=/dev/ram0 rw rootfstype=ext2 init=/init no_timer_check")
        #expect(argv.contains("-initrd"))
    }

    @Test func earlyconAndGdb() throws {
        var q = try invocation("arm64-virt")
        q.earlycon = true
        q.gdb = true
        let argv = q.command.argv
        // Loopback only: QEMU's -s (tcp::1234) listens on every interface.
        #expect(argv.suffix(3) == ["-gdb", "tcp:127.0.0.1:1234", "-S"])
        #expect(!argv.contains("-s"))
        #expect(q.append.contains("earlycon=pl011,0x9000000"))
        q.gdbPort = 4321
        #expect(q.command.argv.suffix(3) == ["-gdb", "tcp:127.0.0.1:4321", "-S"])
        let attach = GdbAttach(buildDirectory: "/b", target: q.target, port: q.gdbPort)
        #expect(attach.command.contains("target remote 127.0.0.1:4321"))
    }

    /// Every target's disk root: the `-drive` that names the image gets snapshot=on, so
    /// guest writes never reach the cached image; commas in its path are doubled.
    @Test func diskRootsAreSnapshotsWithEscapedPaths() throws {
        var checked = 0
        for (name, target) in targets {
            for (root, device) in target.rootDevices where device.kind == .disk {
                var q = QemuInvocation(target: target, rootDevice: device, kernel: "K", disk: "/c/a,b/rootfs.ext2")
                let argv = q.command.argv
                let drive = try #require(argv.indices.first { $0 > 0 && argv[$0 - 1] == "-drive" }.map { argv[$0] }, "\(name)/\(root)")
                #expect(drive.hasPrefix("file=/c/a,,b/rootfs.ext2,"), "\(name)/\(root): \(drive)")
                #expect(drive.hasSuffix(",snapshot=on"), "\(name)/\(root): \(drive)")
                q.diskSnapshot = false
                #expect(!q.command.argv.joined(separator: " ").contains("snapshot"), "\(name)/\(root)")
                checked += 1
            }
        }
        #expect(checked >= 4)
    }

    @Test func dumpDTBKeepsTheMachineOptions() throws {
        let argv = try invocation("riscv64-virt").dumpDTBCommand(to: "/tmp/x.dtb").argv
        #expect(argv[1...2] == ["-M", "virt,dumpdtb=/tmp/x.dtb"])
        #expect(argv.contains("-bios"))
    }
}

@Suite("KVM probe")
struct KvmProbeTests {
    /// The long-mode probe image must itself work: under TCG it prints its marker.
    @Test(.needs(tools: ["qemu-system-x86_64"]))
    func longModeImageRunsUnderTCG() async throws {
        let path = NSTemporaryDirectory() + "kmatrix-probe-test-\(UUID().uuidString).bin"
        try Data(KvmProbe.longModeImage).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let watch = await KvmProbe.watchForMarker(
            binary: try #require(ProcessRunner.which("qemu-system-x86_64")),
            arguments: KvmProbe.qemuArguments(accelerator: .tcg, kernel: path, append: nil),
            marker: KvmProbe.marker, timeout: .seconds(60))
        guard case .seen = watch else {
            Issue.record("the probe image did not print its marker under TCG: \(watch.summary)")
            return
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(processesMentioning(path).isEmpty, "QEMU is still running after the probe")
    }

    @Test(.needs(tools: ["qemu-system-x86_64"]))
    func deadlineStopsASilentGuest() async throws {
        // A guest with no kernel output at all: the watch must end at its deadline and kill QEMU.
        let path = NSTemporaryDirectory() + "kmatrix-probe-silent-\(UUID().uuidString).bin"
        try Data(KvmProbe.longModeImage).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let watch = await KvmProbe.watchForMarker(
            binary: try #require(ProcessRunner.which("qemu-system-x86_64")),
            arguments: KvmProbe.qemuArguments(accelerator: .tcg, kernel: path, append: nil),
            marker: "A MARKER THIS GUEST NEVER PRINTS", timeout: .seconds(2))
        guard case .deadline = watch else {
            Issue.record("expected the deadline, got \(watch.summary)")
            return
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(processesMentioning(path).isEmpty, "QEMU is still running after its deadline")
    }
}
