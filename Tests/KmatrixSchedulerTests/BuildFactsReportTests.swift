import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

@Suite("Build facts in reports")
struct BuildFactsReportTests {
    static let arm64 = TestCache.cell(target: "arm64-virt")
    static let x86 = TestCache.cell(target: "x86_64-pc")

    static func vmlinux(_ cell: Cell?) -> String? { cell.flatMap(TestCache.shared.builtKernel).map { "\($0)/vmlinux" } }

    @Test(.needs(tools: ["size"], .builtKernel("arm64-virt/gcc/tiny/initramfs"), .builtKernel("x86_64-pc/gcc/tiny/initramfs")))
    func sectionSizesAreWhatBinutilsSizeSays() async throws {
        // Both ELF classes' layouts: a 64-bit arm64 and a 64-bit x86 vmlinux, against binutils.
        for path in [Self.vmlinux(Self.arm64), Self.vmlinux(Self.x86)].compactMap({ $0 }) {
            let sizes = try SectionSizes.read(elf: path)
            let output = try await ProcessRunner.capture(Command(["size", path]))
            let numbers = output.standardOutput.split(separator: "\n")[1].split(separator: "\t").prefix(3)
                .map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            #expect(numbers == [sizes.text, sizes.data, sizes.bss], "\(path)")
            #expect(sizes.text > 100_000)
        }
    }

    @Test func sectionSizesRefuseWhatIsNotELF() throws {
        let file = NSTemporaryDirectory() + "kmatrix-not-elf-\(UUID().uuidString)"
        try Data("#!/bin/sh\necho not an ELF file at all, just text long enough for a header\n".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(throws: KmatrixError.self) { try SectionSizes.read(elf: file) }
    }

    @Test func buildLogKeepsTheFirstWarnings() {
        let log = (1...15).map { "drivers/x\($0).c:1:2: warning: unused variable 'v\($0)'" }.joined(separator: "\n")
        let make = "make[2]: warning: -j0 forced in makefile: resetting jobserver mode.\nmake: warning: jobserver unavailable\n"
        let summary = BuildLogSummary.scan(text: "  CC init/main.o\n" + make + log)
        #expect(summary.warnings == 15)
        #expect(summary.firstWarnings.count == 10)
        #expect(summary.firstWarnings.first == "drivers/x1.c:1:2: warning: unused variable 'v1'")
    }

    @Test func bloatOMeterTableIsParsed() throws {
        let text = """
            add/remove: 1/1 grow/shrink: 1/1 up/down: 130/-20 (110)
            Function                                     old     new   delta
            new_thing                                      -     100    +100
            grown                                         40      70     +30
            shrunk                                        50      40     -10
            gone                                          10       -     -10
            Total: Before=1000, After=1110, chg +11.00%
            """
        let diff = try #require(SymbolSizeDiff.parse(text))
        #expect(diff.changed == 4)
        #expect(diff.before == 1000 && diff.after == 1110)
        #expect(diff.symbols.first == .init(name: "new_thing", old: nil, new: 100, delta: 100))
        #expect(diff.symbols.last?.old == 10 && diff.symbols.last?.new == nil)
        #expect(SymbolSizeDiff.parse("Traceback (most recent call last):") == nil)
    }

    /// The previous run's vmlinux collected from the cache: said, not guessed at.
    @Test func aVmlinuxNoLongerInTheCacheIsANoteNotAFailure() async throws {
        let folder = NSTemporaryDirectory() + "kmatrix-gone-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "CONFIG_A=y\n".write(toFile: "\(folder)/config", atomically: true, encoding: .utf8)
        try "old".write(toFile: "\(folder)/old-vmlinux", atomically: true, encoding: .utf8)
        try "new".write(toFile: "\(folder)/new-vmlinux", atomically: true, encoding: .utf8)
        func cell(_ vmlinux: String) throws -> CellResult {
            var cell = sampleResults().cells[0]
            cell.artifacts = [try #require(Artifact(name: "config", path: "\(folder)/config")),
                              try #require(Artifact(name: "vmlinux", path: "\(folder)/\(vmlinux)"))]
            cell.build = BuildFacts(imageBytes: 1, vmlinux: nil, warnings: 0, firstWarnings: [], sourceTree: folder)
            return cell
        }
        let previous = try cell("old-vmlinux")
        try FileManager.default.removeItem(atPath: "\(folder)/old-vmlinux")
        let change = await BuildChange.compare(try cell("new-vmlinux"), with: previous, of: "20260101-000000-1")
        #expect(!change.configChanged && change.configDiff.isEmpty && change.symbols == nil)
        #expect(change.notes == ["vmlinux of run 20260101-000000-1 is no longer in the cache (\(folder)/old-vmlinux): not compared"])
    }

    /// A previous run on disk with a different config and vmlinux: the new run's results
    /// carry the kernel's own diffconfig and bloat-o-meter output, and the reports show them.
    @Test(.needs(tools: ["python3", "nm"], .unpackedKernel,
                 .builtKernel("arm64-virt/gcc/tiny/initramfs"), .builtKernel("x86_64-pc/gcc/tiny/initramfs")))
    func changeSincePreviousRunUsesTheKernelsScripts() async throws {
        let tree = try #require(TestCache.shared.unpackedKernel)
        let runs = NSTemporaryDirectory() + "kmatrix-runs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: runs) }
        try FileManager.default.createDirectory(atPath: "\(runs)/20260101-000000-1", withIntermediateDirectories: true)
        let oldConfig = "\(runs)/old.config", newConfig = "\(runs)/new.config"
        try "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n".write(toFile: oldConfig, atomically: true, encoding: .utf8)
        try "CONFIG_A=y\nCONFIG_C=y\nCONFIG_D=64\n".write(toFile: newConfig, atomically: true, encoding: .utf8)
        func cell(config: String, vmlinux: String) throws -> CellResult {
            var cell = sampleResults().cells[0]
            cell.artifacts = [try #require(Artifact(name: "config", path: config)), try #require(Artifact(name: "vmlinux", path: vmlinux))]
            cell.build = BuildFacts(imageBytes: 1000, vmlinux: try SectionSizes.read(elf: vmlinux), warnings: 0, firstWarnings: [], sourceTree: tree)
            return cell
        }
        var old = sampleResults()
        old.run.id = "20260101-000000-1"
        old.cells = [try cell(config: oldConfig, vmlinux: try #require(Self.vmlinux(Self.x86)))]
        try Reports.write(old, to: "\(runs)/20260101-000000-1")

        let attached = await BuildChange.attach(to: [try cell(config: newConfig, vmlinux: try #require(Self.vmlinux(Self.arm64)))],
                                                runsIn: runs, before: "20260102-000000-2")
        let change = try #require(attached[0].build?.sincePrevious)
        #expect(change.run == "20260101-000000-1")
        #expect(change.configChanged)
        #expect(change.configDiff.contains("-B y"), "\(change.configDiff)")
        #expect(change.configDiff.contains(" C n -> y"), "\(change.configDiff)")
        #expect(change.configDiff.contains("+D 64"), "\(change.configDiff)")
        let symbols = try #require(change.symbols, "\(change.notes)")
        #expect(symbols.changed > 100 && !symbols.symbols.isEmpty)

        var results = sampleResults()
        results.cells = attached
        let markdown = Reports.markdown(results)
        #expect(markdown.contains("## Build facts"))
        #expect(markdown.contains("config since 20260101-000000-1 (scripts/diffconfig)"))
        #expect(markdown.contains("scripts/bloat-o-meter"))
        #expect(Reports.html(results).contains("<h2>Build facts</h2>"))

        // A run that is its own first: nothing earlier, nothing compared.
        let first = await BuildChange.attach(to: [try cell(config: newConfig, vmlinux: try #require(Self.vmlinux(Self.arm64)))],
                                             runsIn: runs, before: "20260101-000000-1")
        #expect(first[0].build?.sincePrevious == nil)
    }
}
