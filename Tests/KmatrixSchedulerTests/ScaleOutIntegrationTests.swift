import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// The cell as the unit that crosses machines, with the real binary: each default cell run
/// alone into its own directory (as one CI job each would), merged, and compared with one
/// run of the whole matrix.
@Suite("Scaling out, end to end", .serialized)
struct ScaleOutIntegrationTests {
    static let defaultCells = (TestCache.project?.cells ?? []).map(\.id)

    /// Runs kmatrix to its end; its status and what it printed.
    @discardableResult
    func kmatrix(_ arguments: [String], environment: [String: String]? = nil) async throws -> (status: Int32, output: String) {
        try await TestProcess.run(try #require(TestCache.kmatrixBinary), arguments, environment: environment, logPrefix: "kmatrix-scaleout")
    }

    static var builtDefaultCells: [Needs.Item] {
        (TestCache.project?.cells ?? []).map { .builtKernel($0.id) }
    }

    @Test(.needs(tools: ["qemu-system-x86_64", "qemu-system-arm", "qemu-system-aarch64", "qemu-system-riscv64"],
                 all: [.kmatrixBinary, .unpackedBusybox, .pythonModule("junitparser")] + builtDefaultCells))
    func fourCellsRunAloneAndMergedEqualOneRun() async throws {
        let testCache = try TestCache.private("scaleout")
        defer { testCache.remove() }
        try testCache.linkSources()
        try testCache.linkArtifacts()
        let cache = testCache.root
        let common = ["--project", repositoryRoot, "--cache", cache, "--plain"]

        let single = try await kmatrix(["run"] + common)
        #expect([0, 1].contains(single.status), "kmatrix run: \(single.output)")
        let whole = try RunResults.load(from: "\(cache)/runs/latest")

        var directories: [String] = []
        for cell in Self.defaultCells {
            let out = "\(cache)/jobs/\(CIWorkflow.resultName(cell))"
            let alone = try await kmatrix(["run"] + common + ["--cell", cell, "--out", out])
            #expect([0, 1].contains(alone.status), "kmatrix run --cell \(cell): \(alone.output)")
            let results = try RunResults.load(from: out)
            #expect(results.cells.map(\.id) == [cell])
            #expect(results.run.directory == out)
            // Self-contained: its logs (the boot's console among them) are inside it.
            let bootLog = try #require(results.cells.first?.boot?.log)
            #expect(bootLog.hasPrefix("\(out)/logs/"))
            #expect(FileManager.default.fileExists(atPath: bootLog))
            // The cache keys of what it booted are recorded.
            for kind in [StepKind.kernelBuild, .rootfs] {
                #expect(results.steps.first { $0.kind == kind && $0.scope == cell }?.key?.count == 64)
            }
            directories.append(out)
        }
        // `run --out` leaves runs/latest alone: it is still the whole run.
        #expect(try RunResults.load(from: "\(cache)/runs/latest").run.id == whole.run.id)

        let merged = "\(cache)/merged"
        let merge = try await kmatrix(["merge"] + directories.reversed() + ["--out", merged])
        #expect(merge.status == single.status, "kmatrix merge: \(merge.output)")
        let combined = try RunResults.load(from: merged)
        #expect(combined.cells.map(\.id) == whole.cells.map(\.id))
        // A boot that failed in one run and not the other is shown, not only counted.
        let differing = zip(combined.cells, whole.cells).filter { $0.outcome != $1.outcome }.map { alone, inWhole in
            "\(inWhole.id): \(inWhole.outcome.rawValue) in the whole run (\(inWhole.boot?.tail.suffix(12).joined(separator: "\n") ?? "no boot")), "
                + "\(alone.outcome.rawValue) alone"
        }
        #expect(combined.cells.map(\.outcome.rawValue) == whole.cells.map(\.outcome.rawValue), "\(differing.joined(separator: "\n"))")
        #expect(combined.cells.map(\.passed) == whole.cells.map(\.passed))
        #expect(combined.run.matrixDigest == whole.run.matrixDigest)
        print("merged \(directories.count) run directories: \(zip(combined.cells.map(\.id), combined.cells.map(\.outcome.rawValue)).map { "\($0) \($1)" }.joined(separator: ", "))")

        // JUnit as CI systems read it; HTML that parses with every element closed.
        let junit = try TestPython.run(TestPython.path, ["-c", """
            import sys
            from junitparser import JUnitXml
            print(sum(1 for suite in JUnitXml.fromfile(sys.argv[1]) if suite.name.startswith("kmatrix.") for case in suite))
            """, "\(merged)/junit.xml"])
        #expect(junit.status == 0 && junit.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(Self.defaultCells.count)", "\(junit.output)")
        let html = try TestPython.run(TestPython.path, ["-c", """
            import sys
            from html.parser import HTMLParser
            class Balance(HTMLParser):
                void = {"meta", "br", "hr", "img", "input", "link", "line", "rect", "circle", "path", "polyline"}
                def __init__(self):
                    super().__init__(); self.open = []; self.cells = 0
                def handle_starttag(self, tag, attrs):
                    if tag not in self.void: self.open.append(tag)
                def handle_startendtag(self, tag, attrs): pass
                def handle_endtag(self, tag):
                    if tag in self.void: return
                    assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
                    self.open.pop()
                def handle_data(self, data):
                    if data in sys.argv[2:]: self.cells += 1
            parser = Balance(); parser.feed(open(sys.argv[1]).read()); parser.close()
            assert not parser.open, f"never closed: {parser.open}"
            print(parser.cells)
            """, "\(merged)/report.html"] + Self.defaultCells)
        #expect(html.status == 0, "\(html.output)")
        #expect((Int(html.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= Self.defaultCells.count, "\(html.output)")
    }

    /// A cell's entries carried from the shared cache to an empty one: a run there builds
    /// nothing, and its artifacts are the imported ones (the kernel's record names the
    /// folder it was published in, which is another cache).
    @Test(.needs(all: [.kmatrixBinary, .unpackedBusybox, .unpackedKernel] + builtDefaultCells))
    func aCellsExportedEntriesMakeARunElsewhereBuildNothing() async throws {
        let cell = try #require(Self.defaultCells.first)
        let exportCache = try TestCache.private("export")
        let importCache = try TestCache.private("import")
        defer { exportCache.remove(); importCache.remove() }
        let archive = "\(exportCache.root)/cell.tar.gz"
        let export = try await kmatrix(["cache", "export", "--project", repositoryRoot, "--cache", TestCache.shared.root, "--cell", cell, "-o", archive])
        #expect(export.status == 0, "\(export.output)")
        // Sources are not cache entries: the Debian tarballs and their unpacked trees are linked.
        try importCache.linkSources()
        let imported = try await kmatrix(["cache", "import", "--cache", importCache.root, archive])
        #expect(imported.status == 0, "\(imported.output)")
        #expect(imported.output.contains("4 entries imported"), "\(imported.output)")
        let bytes = (try FileManager.default.attributesOfItem(atPath: archive))[.size] as? UInt64 ?? 0
        print("exported \(cell): \(export.output.split(separator: "\n").last ?? ""); archive \(bytes) bytes")

        let run = try await kmatrix(["run", "--project", repositoryRoot, "--cache", importCache.root, "--no-boot", "--plain", "--cell", cell])
        #expect(run.status == 0, "\(run.output)")
        let results = try RunResults.load(from: "\(importCache.root)/runs/latest")
        let cached: Set<StepKind> = [.kernelConfig, .kernelBuild, .busyboxBuild, .rootfs]
        let built = results.steps.filter { cached.contains($0.kind) && !$0.cacheHit }.map(\.id.description)
        #expect(built.isEmpty, "built after the import: \(built)")
        #expect(results.steps.filter { cached.contains($0.kind) }.count == 4)
        let artifacts = results.cells.flatMap(\.artifacts).map(\.path)
        #expect(!artifacts.isEmpty)
        #expect(artifacts.allSatisfy { $0.hasPrefix(importCache.workspace.root) }, "\(artifacts)")

        // The same archive cut short is refused, naming it, and imports nothing.
        let damaged = "\(exportCache.root)/damaged.tar.gz"
        let data = try #require(FileManager.default.contents(atPath: archive))
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: damaged))
        let emptyCache = try TestCache.private("damaged")
        defer { emptyCache.remove() }
        let refused = try await kmatrix(["cache", "import", "--cache", emptyCache.root, damaged])
        #expect(refused.status == 2)
        #expect(refused.output.contains("\(damaged) is not a readable kmatrix cache archive (damaged or truncated?)"), "\(refused.output)")
        #expect(ArtifactCache(root: emptyCache.workspace.cache).entries().isEmpty)
    }
}
