import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A guest that prints without end: boot.log stops at its cap with a note, the record
/// says so, the boot is still watched to its deadline (`timeout`), and what kmatrix keeps
/// of the console stays bounded. Part of the real-QEMU suite, so its boots do not overlap.
extension BootRunnerTests {
    static let chattyInit = """
        #include <stdio.h>
        int main(void) {
            for (unsigned long n = 0;; n++) printf("fixture init: line %lu of an endless console\\n", n);
        }
        """

    @Test(BootFixtures.needs)
    func endlessConsoleIsCutAndTimesOut() async throws {
        let initrd = try await BootFixtures.initramfs(Self.chattyInit)
        let folder = (initrd as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = try BootFixtures.target()
        let invocation = QemuInvocation(target: target, rootDevice: try #require(target.rootDevices["initramfs"]),
                                        kernel: TeardownFixtures.probeKernel, initrd: initrd)
        // Small enough that a TCG guest on a loaded 2-core machine fills it well inside the
        // 30 s (one CI run printed 250 KiB in 30 s under the other suites' builds).
        let limit = 64 << 10
        let log = "\(folder)/boot.log"
        let record = await BootRunner.run(invocation, logPath: log,
                                          timeouts: BootTimeouts(total: 30, silence: 20, idle: nil, logLimitBytes: limit))
        let text = try Data(contentsOf: URL(fileURLWithPath: log))
        let note = ConsoleLog.note(limit)
        print("endless console: \(record.outcome.rawValue) after \(record.seconds) s, log \(text.count) bytes, cut at \(record.logCutAt.map(String.init) ?? "-"), last lines kept \(record.lastLines.count)")
        #expect(record.outcome == .timeout, "\(record.outcome): \(record.reason)")
        #expect(record.logCutAt == limit)
        #expect(text.count == limit + note.utf8.count)
        #expect(String(decoding: text.suffix(note.utf8.count), as: UTF8.self) == note)
        // The guest went on printing after the cut and the watch still saw it.
        #expect(record.lastLines.contains { $0.contains("of an endless console") })
        #expect(record.lastLines.count <= 40)
    }
}

@Suite("Console state stays bounded")
struct ConsoleBoundsTests {
    @Test func consoleWatchStateIsBounded() {
        var watch = ConsoleWatch()
        let line = Array("fixture: a line of an endless console\n".utf8)
        for n in 0..<200_000 { watch.feed(line, at: Double(n) / 1000) }
        let unterminated = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        watch.feed(unterminated, at: 300)
        #expect(watch.lastLines.count <= 40)
        #expect(watch.lastLines.allSatisfy { $0.utf8.count <= 16_384 })
    }
}

@Suite("QEMU's CPU demand")
struct CPUSamplesTests {
    /// QEMU's worker threads come and go; a thread that ends takes its counters out of
    /// `/proc`. The demand must not drop with it (a drop read as a negative share, and a busy
    /// guest whose worker ended was judged idle).
    @Test func anEndedThreadDoesNotMakeDemandNegative() throws {
        var cpu = CPUSamples()
        cpu.record(["100": 1.0, "101": 5.0], at: 0)
        cpu.record(["100": 1.9, "101": 5.5], at: 1)
        cpu.record(["100": 2.8], at: 2)            // thread 101 ended with 5.5 s in it
        cpu.record(["100": 3.7, "102": 0.2], at: 3) // a new worker
        let share = try #require(cpu.share(over: 2, now: 3))
        #expect(abs(share - (0.9 + 0.9 + 0.2) / 2) < 1e-9)
        let idle = CPUSamples.threadDemands(getpid())
        #expect(idle.map { !$0.isEmpty } == true)
    }

    /// Once QEMU has exited (a zombie, or reaped) the watcher waits for the console's end
    /// instead of judging silence; a running process has not ended.
    @Test func anExitedProcessHasEndedARunningOneHasNot() throws {
        #expect(!QemuProcess.hasEnded(getpid()))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        let pid = child.processIdentifier
        #expect(!QemuProcess.hasEnded(pid))
        kill(pid, SIGKILL) // the test runner may block SIGTERM, and its children inherit that
        child.waitUntilExit()
        #expect(QemuProcess.hasEnded(pid))
    }
}
