import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// A real boot of a cell whose test suite has a deliberately failing script: the cell fails
/// as tests-failed, the failing script is named with its output, and the kernel's KUnit
/// results and the passing script are still reported; a script that never ends is killed
/// at its suite's time limit and the boot goes on.
@Suite("Guest tests, end to end")
struct GuestTestsIntegrationTests {
    static let cell = "riscv64-virt/gcc/tiny/initramfs"

    @Test(.needs(tools: ["qemu-system-riscv64"], .kmatrixBinary, .builtKernel(cell), .busyboxInstall("riscv64")))
    func aFailingScriptFailsItsCellNamingTheTest() async throws {
        let fixture = try FixtureCommands()
        defer { fixture.remove() }
        let run = try await fixture.run(["run", "--matrix", "\(repositoryRoot)/Tests/Fixtures/guest-tests/matrix.json", "--plain"])
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("checks/fails.sh (fail: exit status 3)"), "\(run.output)")
        let results = try RunResults.load(from: "\(fixture.cache)/runs/latest")
        let cell = try #require(results.cells.first)
        #expect(cell.outcome == .failed(.testsFailed))
        #expect(cell.boot?.outcome == "pass", "the boot itself passed")
        #expect(cell.excerpt.contains("expected 5, got 4"), "the failing script's output is shown: \(cell.excerpt)")
        let tests = try #require(cell.tests)
        #expect(tests.first { $0.id == "checks/fails.sh" }?.status == .fail)
        #expect(tests.first { $0.id == "checks/passes.sh" }?.status == .pass)
        let hangs = tests.first { $0.id == "slow/hangs.sh" }
        #expect(hangs?.status == .fail)
        #expect(hangs?.reason == "killed at its time limit of 2 s")
        #expect(hangs?.output == ["waiting forever"])
        #expect(tests.contains { $0.id == "kunit-basic/list-kunit-test.list_test_list_add" && $0.status == .pass })
        #expect(tests.contains { $0.id == "kunit-basic/example.example_skip_test" && $0.status == .skip })
        let report = try String(contentsOfFile: "\(fixture.cache)/runs/latest/report.md", encoding: .utf8)
        #expect(report.contains("| checks/fails.sh | FAIL |"))
        #expect(report.contains("expected 5, got 4"))
    }

    /// A KUnit option Kconfig drops (the list test without RUNTIME_TESTING_MENU, as tinyconfig
    /// leaves it) is config-dropped-options naming the suite, and nothing is compiled.
    @Test(.needs(tools: ["make", "riscv64-linux-gnu-gcc"], .kmatrixBinary, .unpackedKernel))
    func aDroppedKUnitOptionIsConfigDroppedOptions() async throws {
        let fixture = try FixtureCommands()
        defer { fixture.remove() }
        let matrix = try String(contentsOfFile: "\(repositoryRoot)/Tests/Fixtures/guest-tests/matrix.json", encoding: .utf8)
            .replacingOccurrences(of: "\"CONFIG_RUNTIME_TESTING_MENU=y\", ", with: "")
            .replacingOccurrences(of: "\"scripts\": [\"", with: "\"scripts\": [\"\(repositoryRoot)/Tests/Fixtures/guest-tests/")
            .replacingOccurrences(of: ", \"fails.sh\"", with: "")
        let file = "\(fixture.cache)/dropped.json"
        try matrix.write(toFile: file, atomically: true, encoding: .utf8)
        let build = try await fixture.run(["build", "--matrix", file, "--plain"])
        #expect(build.status == 1, "\(build.output)")
        #expect(build.output.contains("CONFIG_LIST_KUNIT_TEST=y (from test suite kunit-basic"), "\(build.output)")
        #expect(build.output.contains("config-dropped-options"))
    }
}
