import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix lava import`, end to end with the real programs: the job `kmatrix lava` prints
/// for a built default cell, booted by Debian's lava-run, imported as the cell's run
/// directory, and merged with another cell's `run --out` directory.
@Suite("LAVA import", .serialized)
struct LavaImportTests {
    static let lavaCell = "arm64-virt/gcc/tiny/initramfs"
    static let defaultCells: [Cell] = TestCache.project?.cells ?? []
    /// Another default cell, run the ordinary way for the merge.
    static let otherCell: Cell? = defaultCells.first { $0.id != lavaCell }
    static var qemuTools: [String] {
        [lavaCell, otherCell?.id].compactMap { id in defaultCells.first { $0.id == id }?.target.qemu.binary }
    }

    func kmatrix(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await TestProcess.run(try #require(TestCache.kmatrixBinary), arguments, logPrefix: "kmatrix-lava-import")
    }

    /// A folder for one test, removed by the caller.
    static func folder(_ name: String) throws -> String {
        let folder = NSTemporaryDirectory() + "kmatrix-lava-import-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The LAVA log's entries as lava-run printed them (JSON, one a line): the oracle for
    /// what the import took from the log.
    static func entries(_ log: String) -> [[String: Any]] {
        log.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func date(_ entry: [String: Any]) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"
        return (entry["dt"] as? String).flatMap(formatter.date(from:))
    }

    /// The job of the LAVA cell, as `kmatrix lava` prints it (file:// URLs of the shared cache's files).
    func job() async throws -> String {
        let printed = try await kmatrix(["lava", "--project", repositoryRoot, "--cell", Self.lavaCell])
        try #require(printed.status == 0, "\(printed.output)")
        return printed.output
    }

    @Test(.needs(tools: ["lava-run"] + qemuTools,
                 all: [.kmatrixBinary, .unpackedBusybox, .builtKernel(lavaCell), LavaSchema.needed, LavaDispatcher.dispatcherFolder]
                    + (otherCell.map { [.builtKernel($0.id)] } ?? [])))
    func aLavaRunImportsAsTheCellsRunDirectoryAndMerges() async throws {
        let other = try #require(Self.otherCell)
        let folder = try Self.folder("pass")
        defer { try? FileManager.default.removeItem(atPath: folder) }

        let lava = try await LavaDispatcher.run(try await job(), in: folder)
        try #require(lava.results["job"] == "pass" && lava.results["kmatrix_boot"] == "pass", "\(lava.results)\n\(lava.log.suffix(3000))")

        let imported = "\(folder)/imported"
        let started = Date()
        let run = try await kmatrix(["lava", "import", "--project", repositoryRoot, "--cell", Self.lavaCell, lava.outputDirectory,
                                     "--out", imported, "--job-id", "4242"])
        let importSeconds = Date().timeIntervalSince(started)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("LAVA job pass") && run.output.contains("kmatrix_boot pass"), "\(run.output)")

        let results = try RunResults.load(from: imported)
        #expect(results.cells.map(\.id) == [Self.lavaCell])
        let cell = try #require(results.cells.first)
        #expect(cell.outcome == .pass && cell.passed)
        let boot = try #require(cell.boot)
        #expect(boot.lava == LavaBootSummary(deviceType: "qemu", jobID: "4242", job: "pass", errorType: nil, errorMessage: nil,
                                             monitor: "pass", log: "\(imported)/logs/lava/arm64-virt_gcc_tiny_initramfs/output.yaml"))
        #expect(FileManager.default.contentsEqual(atPath: boot.lava?.log ?? "", andPath: "\(lava.outputDirectory)/output.yaml"))
        #expect(results.run.directory == imported && results.run.matrixDigest != nil)

        // The phases are the log's: seconds from LAVA starting QEMU to the console line, and
        // the marker's own uptime on the kernel's clock.
        let entries = Self.entries(lava.log)
        let qemuEntry = entries.first { ($0["msg"] as? [String: Any])?["case"] as? String == "execute-qemu" }
        let qemuStart = try #require(qemuEntry.flatMap { Self.date($0) }, "no execute-qemu result in the LAVA log")
        func consoleEntry(_ prefix: String) -> [String: Any]? {
            entries.first { ["target", "feedback"].contains($0["lvl"] as? String) && ($0["msg"] as? String)?.contains(prefix) == true }
        }
        let markerEntry = try #require(consoleEntry("KMATRIX-BOOT-OK"), "no marker line in the LAVA log")
        let markerLine = try #require(markerEntry["msg"] as? String)
        for (phase, entry) in [("linux", consoleEntry("Linux version")), ("marker", markerEntry)] {
            let logged = try #require(entry.flatMap { Self.date($0) }).timeIntervalSince(qemuStart)
            let recorded = try #require(boot.phases.first { $0.name == phase }?.seconds, "no \(phase) phase: \(boot.phases)")
            #expect(abs(recorded - logged) < 0.01, "\(phase): \(recorded) s recorded, \(logged) s in the log")
        }
        let uptime = try #require(markerLine.split(separator: " ").first { $0.hasPrefix("uptime=") }.flatMap { Double($0.dropFirst(7)) })
        #expect(boot.kernelPhases?.first { $0.name == "marker" }?.seconds == uptime, "\(markerLine)")
        let bootLog = try String(contentsOfFile: boot.log, encoding: .utf8)
        #expect(boot.log.hasPrefix("\(imported)/logs/") && bootLog.contains(markerLine) && bootLog.contains("Linux version"))
        // The guest's tests ran after LAVA's monitor ended; the console still has them.
        #expect(!(cell.tests ?? []).isEmpty && (cell.tests ?? []).allSatisfy { $0.status == .pass || $0.status == .skip }, "\(cell.tests ?? [])")
        for file in ["junit.xml", "report.md", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: "\(imported)/\(file)"), "no \(file)")
        }

        // The same log as a LAVA server keeps it (each entry behind `- `) imports the same.
        let server = "\(folder)/server"
        try FileManager.default.createDirectory(atPath: server, withIntermediateDirectories: true)
        try lava.log.split(separator: "\n").map { "- \($0)\n" }.joined().write(toFile: "\(server)/output.yaml", atomically: true, encoding: .utf8)
        let again = try await kmatrix(["lava", "import", "--project", repositoryRoot, "--cell", Self.lavaCell, server, "--out", "\(folder)/again"])
        #expect(again.status == 0, "\(again.output)")
        #expect(try RunResults.load(from: "\(folder)/again").cells.first?.boot?.phases == boot.phases)

        // Another cell run the ordinary way, in a cache of its own, merges with it.
        let testCache = try TestCache.private("lava-import")
        defer { testCache.remove() }
        try testCache.linkSources()
        try testCache.linkArtifacts()
        let ran = "\(folder)/ran"
        let alone = try await kmatrix(["run", "--project", repositoryRoot, "--cache", testCache.root, "--plain", "--cell", other.id, "--out", ran])
        #expect(alone.status == 0, "kmatrix run --cell \(other.id): \(alone.output)")
        let merged = "\(folder)/merged"
        let merge = try await kmatrix(["merge", imported, ran, "--out", merged])
        #expect(merge.status == 0, "kmatrix merge: \(merge.output)")
        let combined = try RunResults.load(from: merged)
        let order = Self.defaultCells.map(\.id).filter { [Self.lavaCell, other.id].contains($0) }
        #expect(combined.cells.map(\.id) == order)
        #expect(combined.cells.allSatisfy { $0.passed })
        let mergedLava = try #require(combined.cells.first { $0.id == Self.lavaCell }?.boot?.lava)
        #expect(mergedLava.log.hasPrefix("\(merged)/logs/") && FileManager.default.fileExists(atPath: mergedLava.log), "\(mergedLava.log)")
        #expect(combined.cells.first { $0.id == other.id }?.boot?.lava == nil)
        print("lava-run \(Self.lavaCell): \(String(format: "%.1f", lava.seconds)) s; kmatrix lava import: \(String(format: "%.2f", importSeconds)) s; "
              + "phases \(boot.phases.map { "\($0.name) \(String(format: "%.2f", $0.seconds))" }.joined(separator: ", ")); merged with \(other.id)")
    }

    /// The job LavaJobTests makes that expects another machine's marker: the kernel prints its
    /// own, LAVA's monitor never matches and LAVA fails the job. kmatrix's console verdict is a
    /// pass, but a job LAVA failed is never one: the cell fails, exit 1.
    @Test(.needs(tools: ["lava-run", "qemu-system-aarch64"],
                 all: [.kmatrixBinary, .builtKernel(lavaCell), LavaSchema.needed, LavaDispatcher.dispatcherFolder]))
    func aJobLavaFailedImportsAsAFailedCell() async throws {
        let cell = try #require(Self.defaultCells.first { $0.id == Self.lavaCell })
        let arch = try #require(cell.target.userspace.unameMachine)
        let folder = try Self.folder("fail")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let job = try await job()
        let otherMachine = job.replacingOccurrences(of: "arch=\(arch) ", with: "arch=not-\(arch) ")
        try #require(otherMachine != job)
        let lava = try await LavaDispatcher.run(otherMachine, in: folder)
        try #require(lava.results["job"] == "fail" && lava.results["kmatrix_boot"] == nil, "\(lava.results)")

        let imported = "\(folder)/imported"
        let run = try await kmatrix(["lava", "import", "--project", repositoryRoot, "--cell", Self.lavaCell, lava.outputDirectory, "--out", imported])
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("LAVA job fail") && run.output.contains("kmatrix_boot not recorded"), "\(run.output)")
        let results = try RunResults.load(from: imported)
        let result = try #require(results.cells.first)
        #expect(!result.passed && result.outcome != .pass && result.failedStep == "boot[\(Self.lavaCell)]")
        #expect(result.boot?.lava?.job == "fail" && result.boot?.lava?.monitor == nil && result.boot?.lava?.errorType != nil)
        #expect(result.excerpt.contains { $0.contains("LAVA: job fail") }, "\(result.excerpt)")
    }

    /// Bad input is exit 2 naming the file: a folder without the job log, a log that is not
    /// one, a log cut before LAVA's job result. Nothing is written.
    @Test(.needs(.kmatrixBinary)) func aMissingOrGarbledLogIsBadInputNamingTheFile() async throws {
        let folder = try Self.folder("bad")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = "case: job\ndefinition: lava\nresult: pass\n"
        let cases: [(name: String, log: String?, words: String)] = [
            ("missing", nil, "output.yaml: missing: the job log"),
            ("garbage", "this: is [not\n", "output.yaml line 1: not a LAVA log entry"),
            ("binary", "\u{1}\u{2}PK\u{3}\u{4}\n", "output.yaml line 1: not a LAVA log entry"),
            ("cut", #"{"dt": "2026-12-07T11:48:25.98", "lvl": "info", "msg": "start: 1 deployimages"}"# + "\n",
             "output.yaml: no job result"),
        ]
        for (name, log, words) in cases {
            let lava = "\(folder)/\(name)"
            try FileManager.default.createDirectory(atPath: lava, withIntermediateDirectories: true)
            try result.write(toFile: "\(lava)/result.yaml", atomically: true, encoding: .utf8)
            if let log { try log.write(toFile: "\(lava)/output.yaml", atomically: true, encoding: .utf8) }
            let out = "\(folder)/\(name)-out"
            let run = try await kmatrix(["lava", "import", "--project", repositoryRoot, "--cell", Self.lavaCell, lava, "--out", out])
            #expect(run.status == 2, "\(name): \(run.output)")
            #expect(run.output.contains("\(lava)/\(words)"), "\(name): \(run.output)")
            #expect(!FileManager.default.fileExists(atPath: "\(out)/results.json"))
        }
        let nowhere = try await kmatrix(["lava", "import", "--project", repositoryRoot, "--cell", Self.lavaCell, "\(folder)/nowhere", "--out", "\(folder)/o"])
        #expect(nowhere.status == 2 && nowhere.output.contains("\(folder)/nowhere: no such directory"), "\(nowhere.output)")
    }
}
