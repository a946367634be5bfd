import Foundation
import KmatrixBoot
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// The guest's tests in results, JUnit, the reports' grid and `compare`.
@Suite("Guest test reports")
struct GuestTestReportTests {
    static let python: String = ProcessInfo.processInfo.environment["KMATRIX_TEST_PYTHON"]
        ?? "\(FileManager.default.homeDirectoryForCurrentUser.path)/.cache/kmatrix-test-tools/bin/python"
    static var junitparser: Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import junitparser"]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()  // an .enabled(if:) condition is synchronous; python -c import returns at once
        return p.terminationStatus == 0
    }

    func results(armListAdd: GuestTestResult.Status = .fail) -> RunResults {
        var results = sampleResults()
        results.cells[0].tests = [
            GuestTestResult(suite: "kunit-basic", name: "list-kernel-test.list_add", status: .pass),
            GuestTestResult(suite: "kunit-basic", name: "example.example_skip_test", status: .skip, reason: "SKIP this test should be skipped"),
            GuestTestResult(suite: "shell-basic", name: "cpuinfo.sh", status: .pass, output: ["x86_64: ok"]),
        ]
        results.cells[1].tests = [
            GuestTestResult(suite: "kunit-basic", name: "list-kernel-test.list_add", status: armListAdd, reason: "exit <1> & more",
                            output: ["# list_add: EXPECTATION FAILED", "Expected a == b"]),
            GuestTestResult(suite: "kunit-basic", name: "example.example_skip_test", status: .skip),
            GuestTestResult(suite: "shell-basic", name: "cpuinfo.sh", status: .notRun, reason: "the guest stopped before it ran"),
        ]
        return results
    }

    @Test func gridPutsTestsThatDifferFirst() throws {
        let grid = try #require(GuestTestReports.grid(results()))
        #expect(grid.differing == 2)
        #expect(grid.rows.map(\.test) == ["kunit-basic/list-kernel-test.list_add", "shell-basic/cpuinfo.sh", "kunit-basic/example.example_skip_test"])
        let md = Reports.markdown(results())
        #expect(md.contains("| kunit-basic/list-kernel-test.list_add | pass | FAIL |"))
        #expect(md.contains("| shell-basic/cpuinfo.sh | pass | not run |"))
        #expect(md.contains("- x86_64-pc/gcc/tiny/initramfs: 3 tests: 2 pass, 0 fail, 1 skip, 0 not run"))
        #expect(Reports.html(results()).contains("<td class=\"fail\">not run</td>"))
    }

    @Test func junitHasOneTestcasePerTestGroupedByCell() throws {
        let xml = Reports.junit(results())
        #expect(xml.contains("<testsuite name=\"arm-vexpress-a9/gcc/tiny/initramfs\" tests=\"3\" failures=\"2\" skipped=\"1\">"))
        #expect(xml.contains("message=\"exit &lt;1&gt; &amp; more\""))
        #expect(xml.contains("tests=\"8\" failures=\"2\""))
    }

    @Test(.enabled(if: junitparser, "needs junitparser (Scripts/test installs it in a venv; KMATRIX_TEST_PYTHON)"))
    func junitparserReadsEveryTest() async throws {
        let file = NSTemporaryDirectory() + "kmatrix-junit-\(UUID().uuidString).xml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Reports.junit(results()).write(toFile: file, atomically: true, encoding: .utf8)
        let script = """
            import sys
            from junitparser import JUnitXml, Failure, Skipped
            xml = JUnitXml.fromfile(sys.argv[1])
            for suite in xml:
                for case in suite:
                    kind = "fail" if any(isinstance(r, Failure) for r in case.result) else "skip" if any(isinstance(r, Skipped) for r in case.result) else "pass"
                    print(f"{suite.name}|{case.classname}|{case.name}|{kind}")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = ["-c", script, file]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: await pipe.fileHandleForReading.readAll(), as: UTF8.self)
        await p.exited()
        #expect(p.terminationStatus == 0)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.contains("arm-vexpress-a9/gcc/tiny/initramfs|arm-vexpress-a9/gcc/tiny/initramfs.kunit-basic|list-kernel-test.list_add|fail"))
        #expect(lines.contains("x86_64-pc/gcc/tiny/initramfs|x86_64-pc/gcc/tiny/initramfs.kunit-basic|example.example_skip_test|skip"))
        #expect(lines.contains("x86_64-pc/gcc/tiny/initramfs|x86_64-pc/gcc/tiny/initramfs.shell-basic|cpuinfo.sh|pass"))
        #expect(lines.filter { $0.hasPrefix("arm-vexpress-a9/gcc/tiny/initramfs|") }.count == 3)
    }

    @Test func compareCallsAPassedTestThatNowFailsARegression() {
        let old = results(armListAdd: .pass)
        let comparison = RunComparison(old: old, new: results())
        #expect(comparison.regressed)
        #expect(comparison.testRegressions.map(\.test) == ["kunit-basic/list-kernel-test.list_add"])
        #expect(comparison.text.contains("Tests that passed and now fail:\n  arm-vexpress-a9/gcc/tiny/initramfs: kunit-basic/list-kernel-test.list_add: pass -> fail"))
        let back = RunComparison(old: results(), new: old)
        #expect(back.testsFixed.count == 1 && !back.regressed)
    }

    @Test func testsSurviveResultsJSON() throws {
        let decoded = try JSONDecoder.iso.decode(RunResults.self, from: results().encoded())
        #expect(decoded.cells[1].tests?.first?.status == .fail)
        #expect(decoded.cells[1].tests?.last?.status == .notRun)
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder { let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601; return d }
}
