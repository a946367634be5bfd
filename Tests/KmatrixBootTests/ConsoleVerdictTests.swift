import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// Verdicts that can be trusted (issue 14): kernel patterns only on kernel lines, splats the
/// kernel goes on from recorded as warnings, the marker checked against the cell.
@Suite("Console verdicts: kernel lines, kernel warnings, the marker checked")
struct ConsoleVerdictTests {
    let timeouts = BootTimeouts(total: 120, silence: 20, traceGrace: 1)
    static let banner = "[    0.000000] Linux version 6.1.192 (kmatrix@kmatrix) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0) #1 SMP\r\n"
    static let expected = MarkerExpectation(arch: "aarch64", release: "6.1.192")

    func watch(_ text: String, expected: MarkerExpectation = ConsoleVerdictTests.expected) -> ConsoleWatch {
        var watch = ConsoleWatch(expected: expected)
        watch.feed(Array(text.utf8), at: 1)
        return watch
    }

    @Test("Userspace printing 'Kernel panic' then the marker passes")
    func userspaceKernelPanicTextThenMarkerPasses() {
        let watch = watch(Self.banner + "[    0.700000] Run /init as init process\r\n"
                          + "Kernel panic - not syncing: this is a shell script talking\r\n"
                          + "BUG: userspace text, not the kernel's\r\n"
                          + "KMATRIX-BOOT-OK arch=aarch64 release=6.1.192 uptime=0.80\r\n")
        #expect(watch.kernelTimestamps == true)
        #expect(watch.failure == nil)
        #expect(watch.warnings.isEmpty)
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .pass, "\(verdict?.reason ?? "")")
    }

    /// Userspace prints empty lines and brackets of its own between kernel lines.
    @Test func emptyAndBracketedUserspaceLinesAreNotKernelLines() {
        let watch = watch(Self.banner + "\r\n\n[\n[x] [1.5] [ ]\r\n[    0.700000] Run /init as init process\r\n")
        #expect(watch.phases.initStarted == 1)
        #expect(KernelConsole.kernelText("", timestamps: true) == nil)
        #expect(KernelConsole.kernelText("", timestamps: false)?.text == "")
        #expect(KernelConsole.kernelText("[1.5] x", timestamps: true) == nil)
    }

    /// Malformed or truncated kernel-looking lines, in both modes, never trap.
    @Test func oddLinesAreReadWithoutTrapping() {
        let odd = ["", "[", "]", "[]", "[ ", "[    1.000000]", "[    1.000000] ", "[    1.000000][", "[    1.000000][    T1]",
                   "Run as init process", "Run  as init process", "initcall returned after", "initcall x returned 0 after",
                   "initcall x returned 0 after 12", "initcall returned 0 after 5 usecs", "initcall  returned 0 after 5 msecs", "Linux version ", "KMATRIX-BOOT-OK", "\u{1B}[", "\u{1B}"]
        for banner in [Self.banner, "Linux version 6.1.192 (x) #1\n", ""] {
            var watch = ConsoleWatch(expected: Self.expected)
            watch.feed(Array(banner.utf8), at: 0)
            for line in odd { watch.feed(Array((line + "\n").utf8), at: 1) }
            watch.feed(Array("[    1.0000".utf8), at: 2)
            watch.finish(at: 3)
            #expect(watch.failure == nil)
        }
    }

    /// Without printk times the kernel's patterns count only at the start of a line.
    @Test func untimedKernelPatternsCountOnlyAtTheStartOfALine() {
        let watch = watch("Linux version 6.1.192 (kmatrix@kmatrix) (gcc) #1\r\nRun /init as init process\r\n"
                          + "init: echo Kernel panic - not syncing: quoted by userspace\r\n"
                          + "KMATRIX-BOOT-OK arch=aarch64 release=6.1.192 uptime=0.80\r\n")
        #expect(watch.kernelTimestamps == false)
        #expect(BootVerdict.judge(watch, now: 1, timeouts: timeouts)?.outcome == .pass)
        let panicked = self.watch("Linux version 6.1.192 (x) #1\r\nKernel panic - not syncing: VFS: Unable to mount root fs\r\n")
        #expect(panicked.failure?.kind == .panic)
    }

    static let sleepingBug = """
        [    0.512000] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
        [    0.512001] in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: swapper/0
        [    0.512002] preempt_count: 1, expected: 0
        [    0.512003] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.192 #1
        [    0.512004] Call trace:
        [    0.512005]  dump_backtrace+0xe4/0x140
        [    0.512006]  __might_resched+0x154/0x1a0
        [    0.512007]  mutex_lock+0x24/0x80
        [    0.512008]  some_driver_probe+0x30/0x90
        [    0.512009]  do_one_initcall+0x4c/0x1c0
        [    0.512010]  kernel_init_freeable+0x1d0/0x23c

        """

    @Test("A kernel BUG splat then the marker passes, with one kernel warning")
    func kernelBugThenMarkerPassesWithOneWarning() {
        let watch = watch(Self.banner + Self.sleepingBug.replacingOccurrences(of: "\n", with: "\r\n")
                          + "[    0.700000] Run /init as init process\r\nKMATRIX-BOOT-OK arch=aarch64 release=6.1.192 uptime=0.80\r\n")
        #expect(watch.failure == nil)
        #expect(watch.warnings.count == 1)
        let warning = watch.warnings.first
        #expect(warning?.headline == "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580")
        #expect(warning?.oops == false)
        #expect(warning?.kernelTime == 0.512)
        #expect(warning?.lines.count == 1 + KernelConsole.warningLines)
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .pass)
        #expect(verdict?.reason.contains("1 kernel warning") == true)
    }

    @Test func aWarningWithItsCutHereLineIsOneWarningNamedByItsWarningLine() {
        let watch = watch(Self.banner + """
            [    0.400000] ------------[ cut here ]------------
            [    0.400001] WARNING: CPU: 0 PID: 1 at drivers/base/dd.c:123 really_probe+0x1/0x2
            [    0.400002] Modules linked in:
            [    0.400003] ---[ end trace 0000000000000000 ]---
            [    0.500000] BUG: scheduling while atomic: swapper/0/1/0x00000002

            """)
        #expect(watch.warnings.map(\.headline) == ["WARNING: CPU: 0 PID: 1 at drivers/base/dd.c:123 really_probe+0x1/0x2",
                                                   "BUG: scheduling while atomic: swapper/0/1/0x00000002"])
        #expect(watch.warnings.first?.lines.count == 3)
    }

    @Test func anOopsThenAFatalExceptionPanicIsThePanicOfTheOops() {
        let watch = watch(Self.banner + """
            [    1.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000
            [    1.000001] #PF: supervisor write access in kernel mode
            [    1.000002] Oops: 0002 [#1] SMP NOPTI
            [    1.000003] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009
            [    1.000004] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009 ]---

            """)
        #expect(watch.lastOops?.headline == "BUG: kernel NULL pointer dereference, address: 0000000000000000")
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .panic)
        #expect(verdict?.reason.hasPrefix("BUG: kernel NULL pointer dereference") == true)
        #expect(watch.failure?.trace.first == "[    1.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000")
    }

    @Test("QEMU killed by SIGKILL after Linux printed is qemu-error, even after a kernel warning")
    func qemuKilledAfterLinuxPrintedIsQemuError() {
        let watch = watch(Self.banner + Self.sleepingBug + "[    0.900000] Unable to handle kernel paging request at virtual address 0\n")
        let exit = QemuExit(status: "killed by signal 9", failed: true, standardError: "", signal: SIGKILL)
        let verdict = BootVerdict.judge(watch, now: 2, timeouts: timeouts, exit: exit)
        #expect(verdict?.outcome == .qemuError)
        #expect(verdict?.reason.contains("signal 9") == true)
        #expect(verdict?.reason.contains("after the kernel had printed") == true)
    }

    @Test("A marker whose release differs from the built kernel's is a marker mismatch, both values shown")
    func staleKernelReleaseIsAMarkerMismatch() {
        let watch = watch(Self.banner + "KMATRIX-BOOT-OK arch=aarch64 release=6.1.191 uptime=0.80\r\n")
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .markerMismatch)
        #expect(verdict?.reason.contains("release=6.1.191") == true && verdict?.reason.contains("6.1.192") == true, "\(verdict?.reason ?? "")")
        #expect(BootOutcome.markerMismatch.passed == false)
    }

    @Test func anotherMachineIsAMarkerMismatch() {
        let watch = watch(Self.banner + "KMATRIX-BOOT-OK arch=armv7l release=6.1.192 uptime=0.80\r\n")
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .markerMismatch)
        #expect(verdict?.reason.contains("arch=armv7l but the target's machine is aarch64") == true)
    }

    @Test("A module that failed to load (modules=1/2) fails the boot")
    func aModuleThatDidNotLoadFails() {
        let watch = watch(Self.banner + "KMATRIX-BOOT-OK arch=aarch64 release=6.1.192 uptime=0.80 modules=1/2\r\n")
        let verdict = BootVerdict.judge(watch, now: 1, timeouts: timeouts)
        #expect(verdict?.outcome == .markerMismatch)
        #expect(verdict?.reason.contains("modules=1/2: 1 of 2 modules did not load") == true, "\(verdict?.reason ?? "")")
        #expect(BootVerdict.judge(self.watch(Self.banner + "KMATRIX-BOOT-OK arch=aarch64 release=6.1.192 modules=2/2\n"),
                                  now: 1, timeouts: timeouts)?.outcome == .pass)
    }

    /// A kernel that built modules must see every one of them loaded: a marker without the
    /// count (the rootfs lost them) or with another total fails.
    @Test func theModulesTheKernelBuiltMustAllBeCounted() {
        let three = MarkerExpectation(modules: 3)
        #expect(three.mismatches(["modules": "3/3"]).isEmpty)
        #expect(three.mismatches([:]) == ["modules=(missing) but the kernel built 3 modules"])
        #expect(three.mismatches(["modules": "0/0"]).first == "modules=0/0 but the kernel built 3 modules")
        #expect(MarkerExpectation(modules: 0).mismatches([:]).isEmpty)
    }

    @Test func nothingExpectedChecksNothingButModules() {
        let open = MarkerExpectation()
        #expect(open.mismatches(["arch": "x", "release": "y"]).isEmpty)
        #expect(open.mismatches(["modules": "0/1"]).count == 1)
    }

    @Test func aRootDeviceSilenceAllowanceReplacesTheTargetsAndItsIdleCheck() throws {
        let project = try Project.load(root: repositoryRoot)
        let target = try #require(project.targets["arm64-virt"])
        #expect(target.userspace.unameMachine == "aarch64")
        let initramfs = BootTimeouts(target, rootDevice: target.rootDevices["initramfs"])
        #expect(initramfs.silence == Double(target.qemu.silenceSeconds))
        #expect(initramfs.idle == target.qemu.idleSeconds)
        let disk = try #require(target.rootDevices["virtio"])
        let timeouts = BootTimeouts(target, rootDevice: disk)
        #expect(timeouts.silence == Double(try #require(disk.silenceSeconds)))
        #expect(timeouts.idle == nil)
    }
}
