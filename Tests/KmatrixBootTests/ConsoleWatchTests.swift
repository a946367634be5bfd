import Foundation
@testable import KmatrixBoot
import KmatrixCore
import Testing

/// The console parser and the verdict, on recorded console text.
@Suite("Console watching and classification")
struct ConsoleWatchTests {
    let timeouts = BootTimeouts(total: 120, silence: 20, traceGrace: 1)

    /// Feeds `text` in pieces of `size` bytes, all arriving at `time`.
    func feed(_ watch: inout ConsoleWatch, _ text: String, at time: Double, size: Int = 7) {
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            watch.feed(bytes[index..<min(index + size, bytes.count)], at: time)
            index += size
        }
    }

    static let opensbi = """
        \r
        OpenSBI v1.1\r
           ____                    _____ ____ _____\r
          / __ \\                  / ____|  _ \\_   _|\r
        Platform Name             : riscv-virtio,qemu\r
        Boot HART ID              : 0\r

        """

    @Test func phasesAcrossSplitChunks() {
        var watch = ConsoleWatch(firmwareBanner: "OpenSBI")
        feed(&watch, Self.opensbi, at: 0.05, size: 3)
        feed(&watch, "[    0.000000] Linux version 6.1.192 (kmatrix@host) (riscv64-linux-gnu-gcc) #1\r\n", at: 0.2, size: 5)
        feed(&watch, "[    0.310000] Run /init as init process\r\n", at: 0.31, size: 1)
        #expect(BootVerdict.judge(watch, now: 0.32, timeouts: timeouts) == nil)
        feed(&watch, "KMATRIX-BOOT-OK arch=riscv64 release=6.1.192 uptime=0.33\r\n", at: 0.4, size: 2)
        #expect(watch.phases.firstOutput == 0.05)
        #expect(watch.phases.firmware == 0.05)
        #expect(watch.phases.linuxVersion == 0.2)
        #expect(watch.phases.initStarted == 0.31)
        #expect(watch.initPath == "/init")
        #expect(watch.phases.userspace == 0.4)
        #expect(watch.kernelRelease == "6.1.192")
        #expect(watch.markerFields == ["arch": "riscv64", "release": "6.1.192", "uptime": "0.33"])
        #expect(BootVerdict.judge(watch, now: 0.41, timeouts: timeouts)?.outcome == .pass)
    }

    @Test func markerIsNotTakenFromAnUnfinishedLine() {
        var watch = ConsoleWatch()
        watch.feed(Array("KMATRIX-BOOT-OK arch=x86_64 rel".utf8), at: 1)
        #expect(watch.markerFields == nil)
        watch.feed(Array("ease=6.1 uptime=1.5\n".utf8), at: 1.1)
        #expect(watch.markerFields?["release"] == "6.1")
    }

    /// Seen here: printk interleaves with userspace's line on the serial console.
    @Test func aKernelMessageInsideTheMarkerLineIsNotAField() {
        var watch = ConsoleWatch()
        feed(&watch, "KMATRIX-BOOT-OK arch=x86_64 release=fixture uptime=0.1[    2.412139] tsc: Refined TSC clocksource calibration: 2596.142 MHz\r\n", at: 2.4)
        #expect(watch.markerFields == ["arch": "x86_64", "release": "fixture", "uptime": "0.1"])
    }

    @Test func customMarkerPrefix() {
        var watch = ConsoleWatch(marker: "BOARD-UP")
        feed(&watch, "KMATRIX-BOOT-OK arch=x\nBOARD-UP a=1\n", at: 1)
        #expect(watch.markerFields == ["a": "1"])
    }

    @Test func seabiosEscapeSequencesAreRemoved() {
        var watch = ConsoleWatch(firmwareBanner: "SeaBIOS")
        let text = "\u{1B}c\u{1B}[?7l\u{1B}[2J\u{1B}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM...\r\n"
            + "Probing EDD (edd=off to disable)... o\u{1B}c\u{1B}[?7l\u{1B}[2J[    0.000000] Linux version 6.1.0-56-cloud-amd64 (gcc-12)\r\n"
        feed(&watch, text, at: 0.4, size: 4)
        #expect(watch.phases.firmware == 0.4)
        #expect(watch.lastLines.first == "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
        #expect(watch.kernelRelease == "6.1.0-56-cloud-amd64")
    }

    static let vfsPanic = """
        [    0.512000] VFS: Cannot open root device "(null)" or unknown-block(0,0): error -6
        [    0.512100] Please append a correct "root=" boot option; here are the available partitions:
        [    0.512200] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
        [    0.512300] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-56-cloud-amd64 #1  Debian 6.1.192-2
        [    0.512400] Call Trace:
        [    0.512500]  <TASK>
        [    0.512600]  dump_stack_lvl+0x44/0x5c
        [    0.512700]  panic+0x118/0x2ed
        """

    @Test func panicWaitsForItsTraceThenDecides() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n", at: 0.3)
        feed(&watch, Self.vfsPanic + "\n", at: 1.0)
        let failure = watch.failure
        #expect(failure?.kind == .panic)
        #expect(failure?.headline == "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)")
        #expect(failure?.trace.count == 6)
        // Inside the grace period the trace may still grow; after it the verdict is in.
        #expect(BootVerdict.judge(watch, now: 1.5, timeouts: timeouts) == nil)
        let verdict = BootVerdict.judge(watch, now: 2.01, timeouts: timeouts)
        #expect(verdict?.outcome == .panic)
        #expect(verdict?.evidenceAt == 1.0)
    }

    @Test func theEndOfATraceDecidesAtOnce() {
        var watch = ConsoleWatch()
        feed(&watch, Self.vfsPanic + "\n[    0.513000] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\n", at: 1.0)
        #expect(watch.failure?.complete == true)
        #expect(BootVerdict.judge(watch, now: 1.01, timeouts: timeouts)?.outcome == .panic)
    }

    @Test func panicWithQemuExitDecidesAtOnce() {
        var watch = ConsoleWatch()
        feed(&watch, Self.vfsPanic, at: 1.0)  // no final newline: QEMU exited mid-line
        watch.finish(at: 1.05)
        let exit = QemuExit(status: "exit status 0", failed: false, standardError: "")
        #expect(BootVerdict.judge(watch, now: 1.05, timeouts: timeouts, exit: exit)?.outcome == .panic)
        #expect(watch.failure?.trace.last == "[    0.512700]  panic+0x118/0x2ed")
    }

    /// An oops kills the task that hit it and the kernel goes on: it is a warning until the
    /// boot fails, and then it is why (a panic), whatever silence follows.
    @Test func arm64OopsThenSilenceIsAPanic() {
        var watch = ConsoleWatch()
        feed(&watch, """
            [    1.100000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000
            [    1.100100] Mem abort info:
            [    1.100200] Internal error: Oops: 0000000096000004 [#1] SMP
            """ + "\n", at: 1.1)
        #expect(watch.failure == nil)
        #expect(watch.warnings.count == 1)
        #expect(watch.lastOops?.headline.hasPrefix("Unable to handle kernel NULL pointer") == true)
        #expect(watch.lastOops?.lines.count == 3)
        #expect(BootVerdict.judge(watch, now: 20, timeouts: timeouts) == nil)
        let verdict = BootVerdict.judge(watch, now: 21.2, timeouts: timeouts)
        #expect(verdict?.outcome == .panic)
        #expect(verdict?.reason.hasPrefix("Unable to handle kernel NULL pointer") == true, "\(verdict?.reason ?? "")")
        #expect(verdict?.evidenceAt == 1.1)
    }

    @Test func initThatExitsIsInitFailed() {
        var watch = ConsoleWatch()
        feed(&watch, """
            [    0.900000] Run /init as init process
            [    0.950000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000
            """ + "\n", at: 0.95)
        let verdict = BootVerdict.judge(watch, now: 2, timeouts: timeouts)
        #expect(verdict?.outcome == .initFailed)
        #expect(verdict?.reason.contains("Attempted to kill init") == true)
    }

    @Test func noWorkingInitKeepsTheFailedAttempts() {
        var watch = ConsoleWatch()
        feed(&watch, """
            [    0.800000] Failed to execute /init (error -8)
            [    0.800100] Run /sbin/init as init process
            [    0.800200] Run /etc/init as init process
            [    0.800300] Kernel panic - not syncing: No working init found.  Try passing init= option to kernel. See Linux Documentation/admin-guide/init.rst for guidance.
            """ + "\n", at: 0.8)
        #expect(watch.failure?.kind == .initFailed)
        #expect(watch.failure?.trace.first == "[    0.800000] Failed to execute /init (error -8)")
    }

    @Test func aStallTheKernelReportsIsAHangAtOnce() {
        var watch = ConsoleWatch()
        feed(&watch, """
            [   21.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]
            [   21.000100] Modules linked in:
            """ + "\n", at: 21)
        #expect(watch.failure?.kind == .hang)
        #expect(BootVerdict.judge(watch, now: 22.1, timeouts: timeouts)?.outcome == .hang)
    }

    @Test func silenceAfterKernelOutputIsAHang() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n[    0.300000] Console: colour dummy device 80x25\n", at: 0.5)
        #expect(BootVerdict.judge(watch, now: 20.4, timeouts: timeouts) == nil)
        let verdict = BootVerdict.judge(watch, now: 20.5, timeouts: timeouts)
        #expect(verdict?.outcome == .hang)
        #expect(verdict?.evidenceAt == 0.5)
        #expect(verdict?.reason.contains("Console: colour dummy device") == true)
    }

    @Test func anIdleSilentGuestIsAHangBeforeTheSilenceDeadline() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n[    0.900000] Run /init as init process\n", at: 1)
        let timeouts = BootTimeouts(total: 120, silence: 20, idle: 3)
        // Busy (the guest computes silently) or not silent long enough: still open.
        #expect(BootVerdict.judge(watch, now: 4.5, timeouts: timeouts, recentCPUShare: 0.9) == nil)
        #expect(BootVerdict.judge(watch, now: 3.5, timeouts: timeouts, recentCPUShare: 0) == nil)
        #expect(BootVerdict.judge(watch, now: 4.5, timeouts: timeouts, recentCPUShare: nil) == nil)
        let verdict = BootVerdict.judge(watch, now: 4.1, timeouts: timeouts, recentCPUShare: 0.01)
        #expect(verdict?.outcome == .hang)
        #expect(verdict?.evidenceAt == 1)
        // Without the idle check only the silence deadline decides.
        let noIdle = BootTimeouts(total: 120, silence: 20, idle: nil)
        #expect(BootVerdict.judge(watch, now: 4.1, timeouts: noIdle, recentCPUShare: 0) == nil)
    }

    /// The CI run that judged a panicking guest idle: the watcher's threads were held up for
    /// seconds, its first tick afterwards came before the output it had not read yet.
    @Test func silenceTheWatcherDidNotSeeDecidesNothing() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n[    3.936371] evm: HMAC attrs: 0x1\n", at: 4)
        let timeouts = BootTimeouts(total: 90, silence: 15, idle: 10)
        var gaps = WatchGaps()
        for tenth in 1...40 { gaps.tick(at: Double(tenth) / 10) }
        gaps.tick(at: 15.1) // nothing ran for 11 s
        #expect(gaps.since == 15.1)
        #expect(BootVerdict.judge(watch, now: 15.1, timeouts: timeouts, recentCPUShare: 0.08, watchedSince: gaps.since) == nil)
        #expect(BootVerdict.judge(watch, now: 20, timeouts: timeouts, recentCPUShare: 0, watchedSince: gaps.since) == nil)
        // Without the gap the same moment is an idle hang: the rule did not change, only what counts as silence.
        #expect(BootVerdict.judge(watch, now: 15.1, timeouts: timeouts, recentCPUShare: 0.08)?.outcome == .hang)
        // Watched without a gap for the whole idle period after it, the guest is idle.
        for tenth in 152...252 { gaps.tick(at: Double(tenth) / 10) }
        #expect(gaps.since == 15.1)
        let verdict = BootVerdict.judge(watch, now: 25.2, timeouts: timeouts, recentCPUShare: 0.01, watchedSince: gaps.since)
        #expect(verdict?.outcome == .hang)
        #expect(verdict?.evidenceAt == 15.1)
        #expect(verdict?.reason.contains("no console output for 10.1 s") == true, "\(verdict?.reason ?? "")")
    }

    @Test func firmwareOutputAloneIsNoConsoleOutput() {
        var watch = ConsoleWatch(firmwareBanner: "OpenSBI")
        feed(&watch, Self.opensbi, at: 0.05)
        let verdict = BootVerdict.judge(watch, now: 20.1, timeouts: timeouts)
        #expect(verdict?.outcome == .noConsoleOutput)
        #expect(verdict?.reason.contains("firmware") == true)
    }

    @Test func nothingAtAllIsNoConsoleOutput() {
        let watch = ConsoleWatch()
        #expect(BootVerdict.judge(watch, now: 19.9, timeouts: timeouts) == nil)
        #expect(BootVerdict.judge(watch, now: 20, timeouts: timeouts)?.outcome == .noConsoleOutput)
    }

    @Test func outputPastTheDeadlineIsATimeout() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n", at: 0.1)
        feed(&watch, "still going\n", at: 119.5)
        #expect(BootVerdict.judge(watch, now: 120, timeouts: timeouts)?.outcome == .timeout)
    }

    @Test func qemuRefusalIsQemuError() {
        let watch = ConsoleWatch()
        let exit = QemuExit(status: "exit status 1", failed: true, standardError: "qemu-system-x86_64: -bogus: invalid option\n")
        let verdict = BootVerdict.judge(watch, now: 0.05, timeouts: timeouts, exit: exit)
        #expect(verdict?.outcome == .qemuError)
        #expect(verdict?.reason.contains("-bogus: invalid option") == true)
    }

    /// QEMU killed from outside after Linux had printed (and init had started) is the host's
    /// failure, named by its signal, not the guest's (`panic` or `init-failed` before).
    @Test func qemuKilledBySignalAfterLinuxPrintedIsQemuError() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n[    0.900000] Run /init as init process\n", at: 1)
        let exit = QemuExit(status: "killed by signal 9", failed: true, standardError: "", signal: SIGKILL)
        let verdict = BootVerdict.judge(watch, now: 1.2, timeouts: timeouts, exit: exit)
        #expect(verdict?.outcome == .qemuError)
        #expect(verdict?.reason.contains("signal 9 (Killed)") == true, "\(verdict?.reason ?? "")")
        // The same end without the signal (the guest reset itself) stays the guest's.
        let reset = QemuExit(status: "exit status 0", failed: false, standardError: "")
        #expect(BootVerdict.judge(watch, now: 1.2, timeouts: timeouts, exit: reset)?.outcome == .initFailed)
    }

    @Test func rebootWithoutMarkerAfterInitIsInitFailed() {
        var watch = ConsoleWatch()
        feed(&watch, "[    0.000000] Linux version 6.1.0 (x)\n[    0.900000] Run /init as init process\n[    1.000000] reboot: Restarting system\n", at: 1)
        let exit = QemuExit(status: "exit status 0", failed: false, standardError: "")
        #expect(BootVerdict.judge(watch, now: 1.1, timeouts: timeouts, exit: exit)?.outcome == .initFailed)
    }

    @Test func lastLinesAreBounded() {
        var watch = ConsoleWatch()
        for index in 0..<100 { feed(&watch, "line \(index)\n", at: Double(index)) }
        feed(&watch, "partial", at: 100)
        #expect(watch.lastLines.count == ConsoleWatch.recentLimit)
        #expect(watch.lastLines.last == "partial")
    }
}
