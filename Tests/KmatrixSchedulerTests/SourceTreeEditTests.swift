import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// The user's own kernel tree, edited between runs: a git work tree of the unpacked 6.1
/// source, used in place. An edit to `init/main.c` is rebuilt incrementally and booted
/// (its text on the guest console); reverting it is a cache hit on the first build.
@Suite("A kernel tree edited between runs", .serialized)
struct SourceTreeEditTests {
    static let cell = "x86_64-pc/gcc/tiny/initramfs"
    static let printk = #"pr_info("Run %s as init process\n", init_filename);"#

    /// A git work tree of the unpacked kernel, kept between test runs (making it copies and
    /// hashes 1.5 GB): `$TMPDIR/kmatrix-edit-tree-<tarball sha>`.
    static func workTree() async throws -> String {
        let unpacked = try #require(TestCache.shared.unpackedKernel)
        let tree = NSTemporaryDirectory() + "kmatrix-edit-tree-" + (unpacked as NSString).lastPathComponent
        if FileManager.default.fileExists(atPath: "\(tree)/.git/kmatrix-ready") { return tree }
        try? FileManager.default.removeItem(atPath: tree)
        func run(_ argv: [String]) async throws {
            let result = try await TestProcess.run("/usr/bin/env", argv)
            try #require(result.status == 0, "\(argv.joined(separator: " ")) failed: \(result.output)")
        }
        try await run(["cp", "-a", unpacked, tree])
        // Debian's linux-source ignores its whole top level (`/*`, `!/debian/`: its packaging
        // repository's rules); a kernel git tree has the kernel's own .gitignore only.
        let ignore = "\(tree)/.gitignore"
        let rules = try String(contentsOfFile: ignore, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        try rules.filter { $0 != "/*" && $0 != "!/debian/" }.joined(separator: "\n").write(toFile: ignore, atomically: true, encoding: .utf8)
        for argv in [["git", "-C", tree, "init", "-q"], ["git", "-C", tree, "add", "-A"],
                     ["git", "-C", tree, "-c", "user.name=kmatrix", "-c", "user.email=kmatrix@localhost", "commit", "-q", "-m", "6.1 as unpacked"],
                     ["touch", "\(tree)/.git/kmatrix-ready"]] {
            try await run(argv)
        }
        return tree
    }

    /// A project whose matrix builds the one cell from `tree`.
    func project(tree: String) throws -> ScratchProject {
        let scratch = try ScratchProject()
        try scratch.editJSON("matrix.json") { matrix in
            var sources = matrix["sources"] as! [String: Any]
            sources["kernel"] = ["paths": [tree]]
            matrix["sources"] = sources
            var cells = matrix["cells"] as! [[String: Any]]
            cells[0]["target"] = "x86_64-pc"
            matrix["cells"] = [cells[0]]
        }
        return scratch
    }

    /// Runs the matrix; the run's results, the kernel build step's log, the boot's console.
    func run(_ fixture: FixtureCommands, _ scratch: ScratchProject) async throws -> (results: RunResults, buildLog: String, console: String) {
        let (status, output) = try await fixture.run(["run", "--plain"], project: scratch.root)
        let results = try RunResults.load(from: "\(fixture.cache)/runs/latest")
        try #require(status == 0, "kmatrix run exited \(status):\n\(output)")
        let buildLog = (try? String(contentsOfFile: "\(fixture.cache)/runs/latest/logs/kernel.build/\(Self.cell.replacingOccurrences(of: "/", with: "_")).log", encoding: .utf8)) ?? ""
        let console = try results.cells.first?.boot.map { try String(contentsOfFile: $0.log, encoding: .utf8) } ?? ""
        return (results, buildLog, console)
    }

    func buildStep(_ results: RunResults) -> StepResult? {
        results.steps.first { $0.kind == .kernelBuild && $0.scope == Self.cell }
    }

    /// Objects compiled, from kbuild's `  CC      path.o` lines.
    func compiled(_ log: String) -> [String] {
        log.split(separator: "\n").filter { $0.hasPrefix("  CC ") }.map { String($0.split(separator: " ").last ?? "") }
    }

    @Test(.needs(tools: ["git", "make", "gcc", "qemu-system-x86_64"], .kmatrixBinary, .unpackedKernel,
                 .busyboxInstall("amd64")),
          .timeLimit(.minutes(30)))
    func anEditIsRebuiltIncrementallyAndBootedAndARevertIsACacheHit() async throws {
        let tree = try await Self.workTree()
        let scratch = try project(tree: tree); defer { scratch.remove() }
        // A cache kept between test runs too (fixed path): its build folder makes the edit
        // an incremental build; the random marker makes each run's edit new.
        let fixture = try FixtureCommands(cache: NSTemporaryDirectory() + "kmatrix-edit-cache")
        defer { try? FileManager.default.removeItem(atPath: fixture.upstream) }
        let main = "\(tree)/init/main.c"
        let original = try String(contentsOfFile: main, encoding: .utf8)
        try #require(original.contains(Self.printk), "init/main.c of this tree has no '\(Self.printk)'")
        defer { try? original.write(toFile: main, atomically: true, encoding: .utf8) }

        let before = try await run(fixture, scratch)
        #expect(before.results.cells.first?.passed == true)
        let firstKey = try #require(buildStep(before.results)?.key)

        let marker = "kmatrix-edit-\(UInt32.random(in: 0...UInt32.max))"
        try original.replacingOccurrences(of: Self.printk, with: #"pr_info("Run %s as init process ("# + marker + #")\n", init_filename);"#)
            .write(toFile: main, atomically: true, encoding: .utf8)
        let edited = try await run(fixture, scratch)
        let step = try #require(buildStep(edited.results))
        #expect(!step.cacheHit && step.key != firstKey, "the edit must be built, not served from the cache")
        #expect(edited.results.cells.first?.passed == true)
        #expect(edited.console.contains("as init process (\(marker))"), "the edited printk is not on the console")
        // Incremental: init/main.o and the few objects a new build always relinks, not the kernel.
        let objects = compiled(edited.buildLog)
        #expect(objects.contains("init/main.o"), "compiled: \(objects)")
        #expect(objects.count < 10, "an edit to one file recompiled \(objects.count) objects: \(objects)")

        try original.write(toFile: main, atomically: true, encoding: .utf8)
        let reverted = try await run(fixture, scratch)
        let hit = try #require(buildStep(reverted.results))
        #expect(hit.cacheHit && hit.key == firstKey, "the reverted tree is the first build again")
        #expect(!reverted.console.contains(marker))
    }

    @Test(.needs(tools: ["git"], .kmatrixBinary, .unpackedKernel))
    func aTreeConfiguredInPlaceIsRefusedBeforeAnythingRuns() async throws {
        let tree = try await Self.workTree()
        let scratch = try project(tree: tree); defer { scratch.remove() }
        let fixture = try FixtureCommands(); defer { fixture.remove() }
        FileManager.default.createFile(atPath: "\(tree)/.config", contents: Data("CONFIG_64BIT=y\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: "\(tree)/.config") }
        let (status, output) = try await fixture.run(["run", "--plain"], project: scratch.root)
        #expect(status == 2, "\(output)")
        #expect(output.contains("make mrproper") && output.contains(tree), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.cache)/build"), "nothing may run")
    }
}
