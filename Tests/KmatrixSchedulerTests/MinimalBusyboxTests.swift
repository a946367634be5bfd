import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `Matrices/busybox-minimal.json` is only worth shipping while its busybox still runs
/// kmatrix's init, the guest test runner and the shipped guest tests: one cell is built
/// with it (its busybox from allnoconfig, the kernel from the fixture) and booted, and every
/// test must pass. An applet the init or a test starts using without joining the list
/// fails here, not in a user's run.
@Suite("A busybox of only the applets kmatrix uses, end to end")
struct MinimalBusyboxTests {
    static let cell = "riscv64-virt/gcc/tiny/initramfs"

    @Test(.needs(tools: ["make", "riscv64-linux-gnu-gcc", "qemu-system-riscv64"], .kmatrixBinary, .builtKernel(cell)),
          .timeLimit(.minutes(15)))
    func theMinimalBusyboxBootsAndPassesTheGuestTests() async throws {
        let fixture = try FixtureCommands()
        defer { fixture.remove() }
        let run = try await fixture.run(["run", "--matrix", "\(repositoryRoot)/Matrices/busybox-minimal.json", "--cell", Self.cell, "--plain"])
        #expect(run.status == 0, "\(run.output)")
        let results = try RunResults.load(from: "\(fixture.cache)/runs/latest")
        let cell = try #require(results.cells.first)
        let passed = cell.passed
        #expect(passed, "\(cell.outcome): \(cell.excerpt)")
        let tests = try #require(cell.tests)
        #expect(tests.contains { $0.id.hasPrefix("shell-basic/") })
        #expect(tests.allSatisfy { $0.status == .pass || $0.status == .skip }, "\(tests.filter { $0.status != .pass })")
        let busybox = try #require(results.steps.first { $0.kind == .busyboxBuild })
        #expect(busybox.commands.first?.argv.last == "allnoconfig")
        // The install holds links for the listed applets only: ~40, where defconfig makes ~400.
        let binary = try #require(busybox.summary.split(separator: " ").first.map(String.init))
        let install = ((binary as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let applets = ["bin", "sbin", "usr/bin", "usr/sbin"].flatMap { (try? FileManager.default.contentsOfDirectory(atPath: "\(install)/\($0)")) ?? [] }
        #expect(applets.count > 30 && applets.count < 80, "\(applets.count) applets in \(install)")
    }
}
