import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix merge` on synthetic results: one run per cell, as CI jobs write them.
@Suite("Merging run directories")
struct RunMergeTests {
    static let matrixCells = ["x86_64-pc/gcc/tiny/initramfs", "arm-vexpress-a9/gcc/tiny/initramfs"]

    /// A one-cell run directory of `sampleResults`' cell `index`, written where a job on
    /// another machine wrote it (`writtenAt`) and now found in `folder`, with its logs.
    func runDirectory(_ folder: String, cell index: Int, armOutcome: String = "pass", digest: String? = "d1",
                      writtenAt: String = "/home/runner/work/results/x") throws -> RunMerge.Input {
        var results = sampleResults(armOutcome: armOutcome)
        var cell = results.cells[index]
        cell.boot?.log = "\(writtenAt)/logs/boot/\(cell.id.replacingOccurrences(of: "/", with: "_")).log"
        results.cells = [cell]
        results.run.directory = writtenAt
        results.run.matrixDigest = digest
        results.run.matrixCells = Self.matrixCells
        results.run.host = "host\(index)"
        var shared = StepResult(id: StepID(.busyboxBuild, "amd64-gcc"), outcome: StepOutcome(status: .passed, seconds: 3, summary: "built"))
        shared.log = "\(writtenAt)/logs/busybox.build/amd64-gcc.log"
        results.steps = [StepResult(id: StepID(.kernelBuild, cell.id), outcome: StepOutcome(status: .passed, seconds: 10, summary: "built")), shared]
        results = RunResults(run: results.run, cells: results.cells, steps: results.steps)
        try FileManager.default.createDirectory(atPath: "\(folder)/logs/boot", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(folder)/logs/busybox.build", withIntermediateDirectories: true)
        try "console of \(cell.id)\n".write(toFile: "\(folder)/logs/boot/\(cell.id.replacingOccurrences(of: "/", with: "_")).log", atomically: true, encoding: .utf8)
        try "busybox from host\(index)\n".write(toFile: "\(folder)/logs/busybox.build/amd64-gcc.log", atomically: true, encoding: .utf8)
        try Reports.write(results, to: folder)
        return try RunMerge.Input.load(folder)
    }

    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "kmatrix-merge-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func cellsFromSeveralRunsBecomeOneRunInMatrixOrder() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The arm cell's job finished first: the merged run still follows the matrix.
        let arm = try runDirectory("\(dir)/arm", cell: 1, armOutcome: "panic")
        let x86 = try runDirectory("\(dir)/x86", cell: 0)
        let merged = try RunMerge.write([arm, x86], into: "\(dir)/merged")
        let results = try RunResults.load(from: "\(dir)/merged")
        #expect(results.cells.map(\.id) == Self.matrixCells)
        #expect(results.cells.map(\.outcome.rawValue) == ["pass", "panic"])
        #expect(results.summary.cells == 2 && results.summary.failed == 1)
        #expect(merged.missing.isEmpty)
        // The busybox step both jobs ran is there once; each cell's own steps are kept.
        #expect(results.steps.map(\.id.description).sorted() == ["busybox.build[amd64-gcc]", "kernel.build[arm-vexpress-a9/gcc/tiny/initramfs]",
                                                                 "kernel.build[x86_64-pc/gcc/tiny/initramfs]"])
        #expect(results.run.host == "host1, host0")
        #expect(results.run.matrixDigest == "d1")
        // Logs copied in, and the results point at the copies.
        for cell in results.cells {
            let log = try #require(cell.boot?.log)
            #expect(log.hasPrefix("\(dir)/merged/logs/boot/"))
            #expect(try String(contentsOfFile: log, encoding: .utf8) == "console of \(cell.id)\n")
        }
        let busyboxLog = try #require(results.steps.first { $0.kind == .busyboxBuild }?.log)
        #expect(try String(contentsOfFile: busyboxLog, encoding: .utf8) == "busybox from host1\n")
        // The reports a single run writes.
        for file in ["junit.xml", "report.md", "report.html"] { #expect(FileManager.default.fileExists(atPath: "\(dir)/merged/\(file)")) }
        let junit = try String(contentsOfFile: "\(dir)/merged/junit.xml", encoding: .utf8)
        #expect(junit.contains("tests=\"2\" failures=\"1\""))
        #expect(try String(contentsOfFile: "\(dir)/merged/report.md", encoding: .utf8).contains("1 of 2 cells passed"))
    }

    @Test func aCellNoInputRanIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let merged = try RunMerge.combine([try runDirectory("\(dir)/x86", cell: 0)], into: "\(dir)/merged")
        #expect(merged.missing == ["arm-vexpress-a9/gcc/tiny/initramfs"])
    }

    @Test func theSameCellTwiceWithTheSameResultIsKeptOnce() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let merged = try RunMerge.combine([try runDirectory("\(dir)/a", cell: 0), try runDirectory("\(dir)/b", cell: 0)], into: "\(dir)/m")
        #expect(merged.results.cells.map(\.id) == ["x86_64-pc/gcc/tiny/initramfs"])
        #expect(merged.results.steps.filter { $0.kind == .kernelBuild }.count == 1)
    }

    @Test func aCellWithDifferentResultsIsAnErrorNamingItAndBothRuns() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let passed = try runDirectory("\(dir)/first", cell: 1)
        let panicked = try runDirectory("\(dir)/second", cell: 1, armOutcome: "panic")
        let error = #expect(throws: KmatrixErrors.self) { try RunMerge.write([passed, panicked], into: "\(dir)/merged") }
        let message = error?.description ?? ""
        #expect(message.contains("cell arm-vexpress-a9/gcc/tiny/initramfs has different results: pass in \(dir)/first, panic in boot in \(dir)/second"))
        #expect(error?.exitCode == 2)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/merged/results.json"))
    }

    @Test func resultsOfDifferentMatricesAreAnErrorNamingThem() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let one = try runDirectory("\(dir)/one", cell: 0, digest: "aaaa")
        let other = try runDirectory("\(dir)/other", cell: 1, digest: "bbbb")
        let old = try runDirectory("\(dir)/old", cell: 1, digest: nil)
        let error = #expect(throws: KmatrixErrors.self) { try RunMerge.combine([one, other, old], into: "\(dir)/merged") }
        let message = error?.description ?? ""
        #expect(message.contains("2 different matrices"))
        #expect(message.contains("digest aaaa: \(dir)/one"))
        #expect(message.contains("digest bbbb: \(dir)/other"))
        #expect(message.contains("\(dir)/old/results.json: no run.matrixDigest"))
        #expect(error?.exitCode == 2)
    }

    @Test(.needs(.pythonModule("junitparser")))
    func junitparserReadsTheMergedJUnit() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try RunMerge.write([try runDirectory("\(dir)/x86", cell: 0), try runDirectory("\(dir)/arm", cell: 1, armOutcome: "panic")],
                               into: "\(dir)/merged")
        let script = """
            import sys
            from junitparser import JUnitXml, Failure
            for suite in JUnitXml.fromfile(sys.argv[1]):
                for case in suite:
                    print(case.name, "fail" if any(isinstance(r, Failure) for r in case.result) else "pass")
            """
        let run = try TestPython.run(TestPython.path, ["-c", script, "\(dir)/merged/junit.xml"])
        #expect(run.status == 0)
        #expect(run.output.contains("x86_64-pc/gcc/tiny/initramfs pass"))
        #expect(run.output.contains("arm-vexpress-a9/gcc/tiny/initramfs fail"))
    }

    @Test func theMatrixDigestIgnoresWhereTheProjectIsButNotWhatItSays() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = repositoryRoot
        for copy in ["a", "b"] {
            for item in ["Targets", "Toolchains", "matrix.json", "guest-tests"] {
                try FileManager.default.copyItem(atPath: "\(root)/\(item)", toPath: "\(dir)/\(copy)/\(item)")
            }
        }
        let a = try Project.load(root: "\(dir)/a"), b = try Project.load(root: "\(dir)/b")
        #expect(MatrixDigest.of(a) == MatrixDigest.of(b))
        let target = "\(dir)/b/Targets/arm64-virt.json"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target)
        try (String(contentsOfFile: target, encoding: .utf8) + "\n").write(toFile: target, atomically: true, encoding: .utf8)
        #expect(MatrixDigest.of(a) != MatrixDigest.of(try Project.load(root: "\(dir)/b")))
    }
}
