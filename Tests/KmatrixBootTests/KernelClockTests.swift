import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// Milestones on the kernel's own clock and initcall times, from real console logs.
@Suite("Kernel-clock phases and initcalls")
struct KernelClockTests {
    /// Debian's cloud kernel (printk times on) booting kmatrix's x86_64 initramfs under TCG
    /// with `initcall_debug loglevel=8`, `kmatrix boot --kernel probe/vmlinuz --initcall-debug`:
    /// lines of its boot.log, in order, as the console gave them.
    static let debianX86: [String] = [
        "\u{1B}c\u{1B}[?7l\u{1B}[2J\u{1B}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n",
        "Booting from ROM...\r\n",
        "Probing EDD (edd=off to disable)... o\u{1B}c\u{1B}[?7l\u{1B}[2J[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\r\n",
        "[    0.000000] Command line: console=ttyS0 panic=-1 rdinit=/init initcall_debug loglevel=8\r\n",
        "[    1.204334] calling  acpi_init+0x0/0x4bd @ 1\r\n",
        "[    1.358282] initcall acpi_init+0x0/0x4bd returned 0 after 156000 usecs\r\n",
        "[    1.424095] clocksource: Switched to clocksource tsc-early\r\n",
        "[    1.456539] calling  init_kprobe_trace+0x0/0x176 @ 1\r\n",
        "[    1.660948] initcall init_kprobe_trace+0x0/0x176 returned 0 after 204340 usecs\r\n",
        "[    1.727322] calling  pnpacpi_init+0x0/0x6e @ 1\r\n",
        "[    1.749244] initcall pnpacpi_init+0x0/0x6e returned 0 after 17275 usecs\r\n",
        "[    1.922930] Trying to unpack rootfs image as initramfs...\r\n",
        "[    2.304883] calling  crypto_kdf108_init+0x0/0x156 @ 1\r\n",
        "[    2.375667] Freeing initrd memory: 1200K\r\n",
        "[    2.672174] initcall crypto_kdf108_init+0x0/0x156 returned 0 after 367223 usecs\r\n",
        "[    2.947114] clocksource: Switched to clocksource tsc\r\n",
        "[    3.542630] calling  crypto_algapi_init+0x0/0x7e @ 1\r\n",
        "[    4.184366] initcall crypto_algapi_init+0x0/0x7e returned 0 after 639918 usecs\r\n",
        "[    4.410755] Freeing unused kernel image (initmem) memory: 2612K\r\n",
        "[    4.411116] Write protecting the kernel read-only data: 26624k\r\n",
        "[    4.415121] Freeing unused kernel image (text/rodata gap) memory: 2040K\r\n",
        "[    4.418688] Freeing unused kernel image (rodata/data gap) memory: 1892K\r\n",
        "[    4.430909] Run /init as init process\r\n",
        "[    4.431017]   with arguments:\r\n",
        "KMATRIX-BOOT-OK arch=x86_64 release=6.1.0-56-cloud-amd64 uptime=4.76\r\n",
    ]

    /// kmatrix's tiny arm64 kernel (tinyconfig: no printk times), lines of a real boot.log.
    static let tinyArm64 = """
        Booting Linux on physical CPU 0x0000000000 [0x411fd070]\r
        Linux version 6.1.192 (kmatrix@kmatrix) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Thu Jan  1 00:00:00 UTC 1970\r
        clocksource: Switched to clocksource arch_sys_counter\r
        Freeing initrd memory: 1120K\r
        Freeing unused kernel memory: 256K\r
        Run /init as init process\r
        KMATRIX-BOOT-OK arch=aarch64 release=6.1.192 uptime=1.67\r

        """

    @Test func milestonesOfARealTimestampedBoot() {
        var watch = ConsoleWatch(firmwareBanner: "SeaBIOS", expected: MarkerExpectation(arch: "x86_64", release: "6.1.0-56-cloud-amd64"))
        for (index, line) in Self.debianX86.enumerated() { watch.feed(Array(line.utf8), at: 0.3 + Double(index) * 0.2) }
        #expect(watch.kernelTimestamps == true)
        #expect(watch.kernelPhases == [
            KernelPhase(name: "kernel", seconds: 0), KernelPhase(name: "clocksource", seconds: 1.424095),
            KernelPhase(name: "initramfs-unpack", seconds: 1.92293), KernelPhase(name: "initramfs-done", seconds: 2.375667),
            KernelPhase(name: "free-initmem", seconds: 4.410755), KernelPhase(name: "init", seconds: 4.430909),
            KernelPhase(name: "marker", seconds: 4.76),
        ])
        #expect(watch.slowestInitcalls.map(\.name) == ["crypto_algapi_init", "crypto_kdf108_init", "init_kprobe_trace", "acpi_init", "pnpacpi_init"])
        #expect(watch.slowestInitcalls.first?.milliseconds == 639.918)
        #expect(BootVerdict.judge(watch, now: 6, timeouts: BootTimeouts(total: 120, silence: 20))?.outcome == .pass)
    }

    /// kmatrix's tiny riscv64 kernel with CONFIG_PRINTK_TIME=y, booted with `--initcall-debug`
    /// (no kallsyms: initcalls are addresses), lines of a real boot.log.
    static let tinyRiscv64 = """
        Boot HART MEDELEG         : 0x0000000000f0b509\r
        [    0.000000] Linux version 6.1.192 (kmatrix@kmatrix) (riscv64-linux-gnu-gcc (Debian 12.2.0-13) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 Thu Jan  1 00:00:00 UTC 1970\r
        [    0.000000] OF: fdt: Ignoring memory range 0x80000000 - 0x80200000\r
        [    0.146574] clocksource: Switched to clocksource riscv_clocksource\r
        [    0.177394] initcall 0xffffffff801195fc returned 0 after 30185 usecs\r
        [    0.512796] initcall 0xffffffff801184be returned 0 after 323465 usecs\r
        [    0.590115] Freeing initrd memory: 1128K\r
        [    1.188193] initcall 0xffffffff801195ee returned 0 after 665049 usecs\r
        [    1.511425] Freeing unused kernel image (initmem) memory: 164K\r
        [    1.521261] Run /init as init process\r
        [    1.521540]     TERM=linux\r
        KMATRIX-BOOT-OK arch=riscv64 release=6.1.192 uptime=1.94\r

        """

    @Test func milestonesOfATinyKernelWithPrintkTimes() {
        var watch = ConsoleWatch(firmwareBanner: "OpenSBI", expected: MarkerExpectation(arch: "riscv64", release: "6.1.192"))
        watch.feed(Array(Self.tinyRiscv64.utf8), at: 1)
        #expect(watch.kernelPhases.map(\.name) == ["kernel", "clocksource", "initramfs-done", "free-initmem", "init", "marker"])
        #expect(watch.kernelPhases.map(\.seconds) == [0, 0.146574, 0.590115, 1.511425, 1.521261, 1.94])
        #expect(watch.slowestInitcalls == [InitcallTime(name: "0xffffffff801195ee", milliseconds: 665.049),
                                           InitcallTime(name: "0xffffffff801184be", milliseconds: 323.465),
                                           InitcallTime(name: "0xffffffff801195fc", milliseconds: 30.185)])
        #expect(BootVerdict.judge(watch, now: 2, timeouts: BootTimeouts(total: 120, silence: 20))?.outcome == .pass)
    }

    @Test func withoutPrintkTimesOnlyTheMarkersUptimeIsOnTheKernelClock() {
        var watch = ConsoleWatch()
        watch.feed(Array(Self.tinyArm64.utf8), at: 1)
        #expect(watch.kernelTimestamps == false)
        #expect(watch.kernelPhases == [KernelPhase(name: "marker", seconds: 1.67)])
        #expect(watch.initPath == "/init")
    }

    @Test func initcallLinesInBothUnits() {
        #expect(KernelConsole.initcall("initcall pl011_init+0x0/0x4c returned 0 after 1234 usecs")
                == InitcallTime(name: "pl011_init", milliseconds: 1.234))
        #expect(KernelConsole.initcall("initcall 0xffffffc008123456 returned -19 after 7 msecs")
                == InitcallTime(name: "0xffffffc008123456", milliseconds: 7))
        #expect(KernelConsole.initcall("calling  pl011_init+0x0/0x4c @ 1") == nil)
    }

    @Test func initcallAddressesAreNamedFromSystemMap() throws {
        let map = NSTemporaryDirectory() + "kmatrix-system-map-\(UUID().uuidString)"
        try "ffffffc008010000 T _text\nffffffc008123456 t pl011_init\n".write(toFile: map, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: map) }
        let named = InitcallNames.resolve([InitcallTime(name: "0xffffffc008123456", milliseconds: 2), InitcallTime(name: "acpi_init", milliseconds: 1)],
                                          systemMap: map)
        #expect(named.map(\.name) == ["pl011_init", "acpi_init"])
    }

    @Test func theReleaseOfABuiltKernelIsReadFromItsBanner() throws {
        let bytes = Array("\0\0Linux version %s\0Linux version 6.1.192-kmx (kmatrix@kmatrix) (gcc) #1\0".utf8)
        #expect(KernelRelease.find(in: bytes) == "6.1.192-kmx")
        // A real one: any kernel the fixture run built carries the release it booted with.
        let builds = "\(TestCache.shared.root)/cache/kernel.build"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: builds)) ?? []
        if let vmlinux = entries.map({ "\(builds)/\($0)/vmlinux" }).first(where: FileManager.default.fileExists) {
            let release = try #require(KernelRelease.read(vmlinux))
            #expect(release.hasPrefix("6."), "\(vmlinux): \(release)")
        }
    }

    @Test func spreadIsTheMedianMinAndMax() {
        let spread = PhaseSpread(name: "marker", values: [3, 1, 2, 10])
        #expect(spread.median == 2.5 && spread.min == 1 && spread.max == 10 && spread.samples == 4)
        #expect(PhaseSpread(name: "x", values: [5, 1, 3]).median == 3)
    }
}
