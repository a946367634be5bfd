import Foundation
import KmatrixCore
import KmatrixScheduler
import Testing

func sampleResults(armOutcome: String = "pass", linuxAt: Double = 0.9) -> RunResults {
    let run = RunInfo(id: "20261121-200000", started: Date(timeIntervalSince1970: 1_800_000_000), finished: Date(timeIntervalSince1970: 1_800_000_600),
                      wallSeconds: 600, cpuSeconds: 1100, floorSeconds: 550, jobs: 2, cores: 2, host: "h", hostArch: "x86_64",
                      kvm: "unusable", matrix: "matrix.json", cache: "/c", command: ["kmatrix", "run"], interrupted: false)
    func boot(_ outcome: String, _ linux: Double) -> BootSummary {
        BootSummary(outcome: outcome, accelerator: "tcg",
                    phases: [.init(name: "first-output", seconds: 0.1), .init(name: "linux", seconds: linux),
                             .init(name: "init", seconds: linux + 0.5), .init(name: "marker", seconds: linux + 0.6)],
                    seconds: linux + 0.7, qemuVersion: "7.2", command: ["qemu"], log: "/l", tail: [])
    }
    let cells = [
        CellResult(id: "x86_64-pc/gcc/tiny/initramfs", target: "x86_64-pc", toolchain: "gcc", profile: "tiny", rootfs: "initramfs",
                   arch: "x86_64", outcome: .pass, passed: true, steps: ["kernel.build[x86_64-pc/gcc/tiny/initramfs]"],
                   kernel: KernelSummary(toolchainVersion: "12.2.0", sourceSHA256: "s", configSHA256: "c", buildSeconds: 200, imageBytes: 1_200_000, warnings: 0, errors: 0),
                   boot: boot("pass", linuxAt)),
        CellResult(id: "arm-vexpress-a9/gcc/tiny/initramfs", target: "arm-vexpress-a9", toolchain: "gcc", profile: "tiny", rootfs: "initramfs",
                   arch: "arm", outcome: CellOutcome(rawValue: armOutcome) ?? .failed(.panic), passed: armOutcome == "pass", failedStep: armOutcome == "pass" ? nil : "boot",
                   dtb: DeviceTreeSummary(file: "vexpress-v2p-ca9.dtb", passed: true, errors: 0, warnings: 1,
                                          findings: [.init(severity: "warning", node: "/smb/ethernet@3,02000000", reason: "no built-in driver for <smsc,lan9118>")]),
                   boot: boot(armOutcome, 1.5), excerpt: armOutcome == "pass" ? [] : ["Kernel panic - not syncing: No working init found"]),
    ]
    let steps = [StepResult(id: StepID(.kernelBuild, "x86_64-pc/gcc/tiny/initramfs"), outcome: StepOutcome(status: .passed, cacheHit: true, seconds: 0.01, summary: "cached"))]
    return RunResults(run: run, cells: cells, steps: steps)
}

@Suite("Reports")
struct ReportTests {
    @Test func junitHasOneTestCasePerCellAndFailures() {
        let xml = Reports.junit(sampleResults(armOutcome: "panic"))
        #expect(xml.components(separatedBy: "<testcase ").count - 1 == 2)
        #expect(xml.contains("<failure type=\"panic\""))
        #expect(xml.contains("No working init found"))
        #expect(xml.contains("tests=\"2\" failures=\"1\""))
    }

    @Test func markdownShowsTheMatrixSideBySide() {
        let md = Reports.markdown(sampleResults())
        #expect(md.contains("| x86_64-pc/gcc/tiny/initramfs | **pass** | cached | 1.20 MB |"))
        #expect(md.contains("2 of 2 cells passed"))
        #expect(md.contains("warning: `/smb/ethernet@3,02000000`"))
    }

    @Test func htmlIsSelfContainedAndEscaped() {
        let html = Reports.html(sampleResults(armOutcome: "panic"))
        // Nothing is fetched: no external scripts, styles or images (the SVG namespace is a name, not a load).
        for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] { #expect(!html.contains(external), "\(external)") }
        #expect(html.contains("<svg"))
        #expect(html.contains("&lt;smsc,lan9118&gt;"))
    }

    @Test func resultsRoundTripThroughJSON() throws {
        let dir = NSTemporaryDirectory() + "kmatrix-report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Reports.write(sampleResults(), to: dir)
        let loaded = try RunResults.load(from: dir)
        #expect(loaded.cells.map(\.id) == sampleResults().cells.map(\.id))
        #expect(loaded.schema == "kmatrix-results/1")
        for file in ["junit.xml", "report.md", "report.html"] { #expect(FileManager.default.fileExists(atPath: "\(dir)/\(file)")) }
    }

    @Test func compareFindsNewFailuresAndSlowerPhases() {
        let comparison = RunComparison(old: sampleResults(), new: sampleResults(armOutcome: "panic", linuxAt: 2.0))
        #expect(comparison.newFailures.map(\.cell) == ["arm-vexpress-a9/gcc/tiny/initramfs"])
        #expect(comparison.slower.contains { $0.cell == "x86_64-pc/gcc/tiny/initramfs" && $0.phase == "linux" })
        #expect(comparison.regressed)
        let fixed = RunComparison(old: sampleResults(armOutcome: "panic"), new: sampleResults())
        #expect(fixed.fixed.count == 1 && !fixed.regressed)
        // Jitter below the noise allowance is not a change.
        #expect(RunComparison(old: sampleResults(linuxAt: 0.9), new: sampleResults(linuxAt: 1.0)).slower.isEmpty)
    }
}
