import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// Small guests built in the test: Debian's x86_64 cloud kernel (fetched by Scripts/bootstrap
/// into the shared test cache for the KVM probe) with one static C program as /init,
/// packed with the host's cpio.
enum BootFixtures {
    static let needs: Needs = .needs(tools: ["qemu-system-x86_64", "gcc", "cpio"],
                                     .file("/usr/lib/x86_64-linux-gnu/libc.a", from: "libc6-dev"), .probeKernel)

    static let passInit = """
        #include <stdio.h>
        #include <unistd.h>
        #include <sys/reboot.h>
        int main(void) {
            printf("KMATRIX-BOOT-OK arch=x86_64 release=fixture uptime=0.1\\n");
            fflush(stdout);
            reboot(RB_AUTOBOOT);
            return 0;
        }
        """
    static let hangInit = """
        #include <stdio.h>
        #include <unistd.h>
        int main(void) {
            printf("fixture init: hanging now\\n");
            fflush(stdout);
            for (;;) pause();
        }
        """
    static let exitInit = """
        #include <stdio.h>
        int main(void) { printf("fixture init: exiting\\n"); return 3; }
        """

    /// A gzip'd newc initramfs in a fresh folder: `/init` from `source`, or just a text
    /// file when `source` is nil (no init at all). Returns its path.
    static func initramfs(_ source: String?) async throws -> String {
        let folder = NSTemporaryDirectory() + "kmatrix-boot-test-\(UUID().uuidString)"
        let root = folder + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var entries = ["."]
        if let source {
            try source.write(toFile: folder + "/init.c", atomically: true, encoding: .utf8)
            try await shell(["gcc", "-static", "-O1", "-o", root + "/init", folder + "/init.c"])
            entries.append("init")
        } else {
            try "no init here\n".write(toFile: root + "/README", atomically: true, encoding: .utf8)
            entries.append("README")
        }
        let list = folder + "/list"
        try entries.joined(separator: "\n").appending("\n").write(toFile: list, atomically: true, encoding: .utf8)
        let archive = folder + "/initramfs.cpio"
        try await shell(["sh", "-c", "cd \"$1\" && cpio -o -H newc --quiet < \"$2\" > \"$3\"", "sh", root, list, archive])
        return archive
    }

    static func shell(_ argv: [String]) async throws {
        let result = try await TestProcess.run(ProcessRunner.which(argv[0]) ?? argv[0], Array(argv.dropFirst()))
        guard result.status == 0 else {
            throw KmatrixError(.hostFailure, "\(argv.joined(separator: " ")) failed with status \(result.status): \(result.output)")
        }
    }

    static func target() throws -> Target {
        try #require(try Project.load(root: repositoryRoot).targets["x86_64-pc"])
    }

    static func invocation(initrd: String, change: (inout Target) -> Void = { _ in }) throws -> QemuInvocation {
        var target = try target()
        change(&target)
        let device = try #require(target.rootDevices["initramfs"])
        let kernel = try #require(TestCache.shared.probeKernel, "Scripts/bootstrap fetches the probe kernel")
        return QemuInvocation(target: target, rootDevice: device, kernel: kernel, initrd: initrd)
    }

    static func logPath(for initrd: String) -> String {
        ((initrd as NSString).deletingLastPathComponent as NSString).appendingPathComponent("boot.log")
    }
}

/// Real QEMU boots of the fixtures; each asserts the classification and that QEMU is gone.
@Suite("Boot runs with real QEMU", .serialized, BootFixtures.needs)
struct BootRunnerTests {
    /// Generous deadlines for a loaded 2-core machine; the hang test shortens the silence.
    /// Idle after 10 s, not the library's 3: Debian's kernel can sleep for seconds in its
    /// device probes before it panics for want of an init (a cold CI run's test phase saw
    /// 4 s of silence at 6 % of a CPU after `evm: HMAC attrs` and judged the boot idle).
    /// The hang test below sets its own idle allowance.
    let timeouts = BootTimeouts(total: 90, silence: 15, traceGrace: 1, idle: 10)

    /// Also removes the fixture's folder (initramfs, boot.log) once QEMU is gone. The runner
    /// returns only after QEMU's process group is gone, so nothing may be left at all.
    func expectNoQemuLeft(_ initrd: String) async throws {
        let left = processesMentioning(initrd)
        #expect(left.isEmpty, "a QEMU process is still running")
        if left.isEmpty { try? FileManager.default.removeItem(atPath: (initrd as NSString).deletingLastPathComponent) }
    }

    @Test func passes() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.passInit)
        let log = BootFixtures.logPath(for: initrd)
        let record = await BootRunner.run(try BootFixtures.invocation(initrd: initrd), logPath: log, timeouts: timeouts)
        #expect(record.outcome == .pass, "\(record.reason)\n\(record.lastLines.joined(separator: "\n"))")
        #expect(record.marker == ["arch": "x86_64", "release": "fixture", "uptime": "0.1"])
        #expect(record.kernelRelease?.hasPrefix("6.") == true)
        let phases = record.phases
        #expect(phases.firmware != nil, "SeaBIOS banner not timed")
        #expect(phases.linuxVersion != nil && phases.initStarted != nil && phases.userspace != nil)
        if let firmware = phases.firmware, let linux = phases.linuxVersion, let initStarted = phases.initStarted, let user = phases.userspace {
            #expect(firmware <= linux && linux <= initStarted && initStarted <= user)
        }
        #expect(record.accelerator == .tcg)
        #expect(record.qemuVersion?.contains("QEMU emulator version") == true)
        #expect(record.command.first == "qemu-system-x86_64")
        let logText = try String(contentsOfFile: log, encoding: .utf8)
        #expect(logText.contains("KMATRIX-BOOT-OK"))
        #expect(logText.contains("Linux version"))
        #expect(LiveMachines.count == 0, "the finished boot is still registered as live")
        try await expectNoQemuLeft(initrd)
    }

    @Test func initramfsWithoutInitPanics() async throws {
        let initrd = try await BootFixtures.initramfs(nil)
        let record = await BootRunner.run(try BootFixtures.invocation(initrd: initrd), logPath: BootFixtures.logPath(for: initrd), timeouts: timeouts)
        #expect(record.outcome == .panic, "\(record.reason)")
        #expect(record.reason.contains("Kernel panic - not syncing"))
        #expect(record.trace.contains { $0.contains("Kernel panic") })
        #expect(!record.lastLines.isEmpty)
        // The verdict rests on the panic line (its evidence), not on silence or a deadline.
        #expect(record.reportedAfter != nil)
        #expect(!record.reason.contains("no console output") && !record.reason.contains("idle"))
        try await expectNoQemuLeft(initrd)
    }

    @Test func initThatExitsIsInitFailed() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.exitInit)
        let record = await BootRunner.run(try BootFixtures.invocation(initrd: initrd), logPath: BootFixtures.logPath(for: initrd), timeouts: timeouts)
        #expect(record.outcome == .initFailed, "\(record.reason)")
        #expect(record.reason.contains("Attempted to kill init"))
        try await expectNoQemuLeft(initrd)
    }

    @Test func guestThatHangsAfterBootIsAHangOnceItIsIdle() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.hangInit)
        // The silence deadline is far away: the idle guest must be reported long before it.
        let record = await BootRunner.run(try BootFixtures.invocation(initrd: initrd), logPath: BootFixtures.logPath(for: initrd),
                                          timeouts: BootTimeouts(total: 90, silence: 60, idle: 3))
        #expect(record.outcome == .hang, "\(record.reason)")
        #expect(record.reason.contains("idle"))
        #expect(record.phases.initStarted != nil)
        #expect(record.lastLines.contains("fixture init: hanging now"))
        // Decided by the idle check (the reason names it), not by the 60 s silence, and only
        // once the guest had been quiet for the idle period.
        let after = try #require(record.reportedAfter)
        #expect(after >= 3, "reported \(after) s after the last output, before the guest was idle for 3 s")
        try await expectNoQemuLeft(initrd)
    }

    @Test func silenceMakesAHangWithoutTheIdleCheck() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.hangInit)
        // Long enough that a kernel slowed by a busy host does not pause that long while it
        // boots: the silence that decides is the one after init's last line.
        let silence = 10.0
        let record = await BootRunner.run(try BootFixtures.invocation(initrd: initrd), logPath: BootFixtures.logPath(for: initrd),
                                          timeouts: BootTimeouts(total: 90, silence: silence, idle: nil))
        #expect(record.outcome == .hang, "\(record.reason)")
        // The silence rule decided (its reason; the idle rule is off), after init's last line
        // and not before the silence passed; the 90 s deadline would have been a timeout.
        #expect(record.reason.hasPrefix("no console output for") && !record.reason.contains("idle"), "\(record.reason)")
        // Init's line is among the last (the kernel may still print a line of its own after it).
        #expect(record.lastLines.contains("fixture init: hanging now"), "\(record.lastLines)")
        let after = try #require(record.reportedAfter)
        #expect(after >= silence, "reported \(after) s after the last output, before the silence passed")
        try await expectNoQemuLeft(initrd)
    }

    @Test func consoleOnTheWrongDeviceIsNoConsoleOutput() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.hangInit)
        let invocation = try BootFixtures.invocation(initrd: initrd) { $0.console.device = "ttyS1" }
        let record = await BootRunner.run(invocation, logPath: BootFixtures.logPath(for: initrd),
                                          timeouts: BootTimeouts(total: 90, silence: 60, idle: 3))
        #expect(record.outcome == .noConsoleOutput, "\(record.reason)")
        #expect(record.phases.linuxVersion == nil)
        #expect(record.phases.firmware != nil, "SeaBIOS still prints on ttyS0")
        // Reported once the guest went idle, not after the 60 s silence.
        #expect(record.reason.contains("idle"), "\(record.reason)")
        try await expectNoQemuLeft(initrd)
    }

    @Test func qemuRefusingAnArgumentIsQemuError() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.passInit)
        let invocation = try BootFixtures.invocation(initrd: initrd) { $0.qemu.args = ["-no-such-option"] }
        let record = await BootRunner.run(invocation, logPath: BootFixtures.logPath(for: initrd), timeouts: timeouts)
        #expect(record.outcome == .qemuError, "\(record.reason)")
        #expect(record.reason.contains("-no-such-option"))
        #expect(record.qemuStandardError.contains("invalid option"))
        // QEMU ended by itself: the verdict came from its exit, not from a deadline.
        #expect(record.qemuTermination?.hasPrefix("exit status") == true, "\(record.qemuTermination ?? "no termination")")
        #expect(record.phases.firstOutput == nil)
        try await expectNoQemuLeft(initrd)
    }

    @Test func missingQemuBinaryIsQemuError() async throws {
        let initrd = try await BootFixtures.initramfs(nil)
        let invocation = try BootFixtures.invocation(initrd: initrd) { $0.qemu.binary = "qemu-system-does-not-exist" }
        let record = await BootRunner.run(invocation, logPath: BootFixtures.logPath(for: initrd), timeouts: timeouts)
        #expect(record.outcome == .qemuError)
        #expect(record.reason.contains("not installed"))
        try await expectNoQemuLeft(initrd)
    }
}

@Suite("Accelerator choice")
struct AcceleratorChoiceTests {
    func target(_ name: String) throws -> Target {
        try #require(try Project.load(root: repositoryRoot).targets[name])
    }

    @Test func foreignArchitecturesUseTCGWithoutProbing() async throws {
        let choice = AcceleratorChoice(probeKernel: nil, cacheFile: nil, hostArch: "x86_64")
        let arm = await choice.choose(for: try target("arm-vexpress-a9"))
        let arm64 = await choice.choose(for: try target("arm64-virt"))
        #expect(arm.accelerator == .tcg && arm64.accelerator == .tcg)
        // The reason is the host architecture, never a probe's verdict: no probe ran.
        #expect(arm64.reason.contains("aarch64"))
        #expect(!arm.reason.contains("probe") && !arm64.reason.contains("probe"), "\(arm.reason); \(arm64.reason)")
    }

    @Test(.needs(tools: ["qemu-system-x86_64"]))
    func aVerdictOnDiskIsReusedWhenItsKeyMatches() async throws {
        let cache = NSTemporaryDirectory() + "kmatrix-kvm-verdict-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let key = try #require(await AcceleratorChoice.cacheKey(probeKernel: nil, qemu: "qemu-system-x86_64"))
        AcceleratorChoice.write(.init(key: key, probe: KvmProbe(usable: false, reason: "recorded verdict", seconds: 5), date: Date()), to: cache)
        let choice = AcceleratorChoice(probeKernel: nil, cacheFile: cache, hostArch: "x86_64")
        let picked = await choice.choose(for: try target("x86_64-pc"))
        #expect(picked.accelerator == .tcg)
        #expect(picked.reason.contains("recorded verdict"))

        // A different key (another QEMU, kernel or host) is probed again, not trusted.
        AcceleratorChoice.write(.init(key: "other", probe: KvmProbe(usable: true, reason: "stale", seconds: 5), date: Date()), to: cache)
        let fresh = await AcceleratorChoice(probeKernel: nil, cacheFile: cache, hostArch: "x86_64").kvmProbe()
        #expect(!fresh.reason.contains("stale"))
    }
}
