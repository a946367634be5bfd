import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix run` driven as a user drives it: the real binary, real make and compilers.
@Suite("kmatrix run, end to end", .serialized)
struct RunIntegrationTests {
    /// The kmatrix executable beside the test bundle (`swift build --build-tests` builds both).
    static let binary: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kmatrix").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()
    static let defaultCache = Workspace(root: Workspace.defaultRoot())
    static var unpackedKernel: String? {
        let src = "\(defaultCache.root)/src"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: src)) ?? []
        return names.filter { $0.hasPrefix("linux-") && !$0.hasSuffix(".lock") }
            .map { "\(src)/\($0)" }.first { FileManager.default.fileExists(atPath: "\($0)/.kmatrix-unpacked") }
    }
    static var ready: Bool {
        binary != nil && unpackedKernel != nil && ProcessRunner.which("x86_64-linux-gnu-gcc") != nil && ProcessRunner.which("make") != nil
            && FileManager.default.fileExists(atPath: "\(defaultCache.root)/sources")
    }
    static let reason: Comment = "needs the kmatrix binary, make, x86_64-linux-gnu-gcc and an unpacked kernel source in ~/.cache/kmatrix (Scripts/bootstrap, then any kmatrix run)"

    /// Starts the kmatrix binary with its output going to `log` (or nowhere).
    func launch(_ arguments: [String], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = arguments
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = output
            process.standardError = output
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// A cache of its own that borrows the unpacked sources and fetched tarballs.
    func scratchCache() throws -> String {
        let root = NSTemporaryDirectory() + "kmatrix-run-test-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/src", withIntermediateDirectories: true)
        let tree = Self.unpackedKernel!
        try fm.createSymbolicLink(atPath: "\(root)/src/\((tree as NSString).lastPathComponent)", withDestinationPath: tree)
        try fm.createSymbolicLink(atPath: "\(root)/sources", withDestinationPath: "\(Self.defaultCache.root)/sources")
        return root
    }

    @Test(.enabled(if: ready, reason))
    func anInterruptedRunLeavesNoChildrenAndResumes() async throws {
        let cache = try scratchCache()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let log = "\(cache)/run.out"
        let process = try launch(["run", "--project", repositoryRoot, "--cache", cache, "--target", "x86_64-pc", "--no-boot", "--plain"], log: log)
        // Wait until the kernel compile is under way: make and gcc are running.
        let deadline = ContinuousClock.now + .seconds(240)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("kernel.build[x86_64-pc/gcc/tiny/initramfs] started") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .seconds(3))
        #expect(!processesMentioning(cache).isEmpty, "a compile should be running under \(cache)")
        let interrupted = ContinuousClock.now
        process.interrupt()
        process.waitUntilExit()
        let stopTime = ContinuousClock.now - interrupted
        #expect(process.terminationStatus == 130)
        // The issue asks for two seconds; the bound is looser because tests run beside builds.
        #expect(stopTime < .seconds(8), "kmatrix took \(stopTime) to stop")
        try await Task.sleep(for: .milliseconds(500))
        #expect(processesMentioning(cache).isEmpty, "children left behind: \(processesMentioning(cache))")

        // The next run resumes: the verified config comes from the cache.
        let config = "\(cache)/cache/kernel.config"
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: config)) ?? []).contains { !$0.hasPrefix(".") })
        let results = try RunResults.load(from: "\(cache)/runs/latest")
        #expect(results.run.interrupted)
        #expect(results.cells.first?.outcome == .failed(.interrupted))

        // The next run resumes from the cache: the verified config is not made again.
        let relog = "\(cache)/rerun.out"
        let rerun = try launch(["run", "--project", repositoryRoot, "--cache", cache, "--target", "x86_64-pc", "--no-boot", "--plain"], log: relog)
        let resumeDeadline = ContinuousClock.now + .seconds(120)
        var text = ""
        while ContinuousClock.now < resumeDeadline, rerun.isRunning {
            text = (try? String(contentsOfFile: relog, encoding: .utf8)) ?? ""
            if text.contains("kernel.build[x86_64-pc/gcc/tiny/initramfs] started") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        rerun.interrupt()
        rerun.waitUntilExit()
        text = (try? String(contentsOfFile: relog, encoding: .utf8)) ?? ""
        #expect(text.contains("kernel.config[x86_64-pc/gcc/tiny/initramfs] passed cached"), "rerun output:\n\(text)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(processesMentioning(cache).isEmpty)
    }

    /// A real failing cell (Kconfig drops what it asked for) beside a good one: the good one
    /// still builds and passes, the run exits 1, and the results say what failed and why.
    @Test(.enabled(if: ready && ProcessRunner.which("riscv64-linux-gnu-gcc") != nil && ProcessRunner.which("arm-linux-gnueabihf-gcc") != nil, reason))
    func aFailingCellDoesNotStopTheOthers() async throws {
        let dir = NSTemporaryDirectory() + "kmatrix-failing-cell-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var matrix = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/matrix.json"))) as! [String: Any]
        matrix["cells"] = [
            ["target": "riscv64-virt", "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs"],
            ["target": "arm-vexpress-a9", "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs",
             "options": ["# CONFIG_MMU is not set"]],
        ]
        try JSONSerialization.data(withJSONObject: matrix).write(to: URL(fileURLWithPath: "\(dir)/matrix.json"))
        let process = try launch(["run", "--project", repositoryRoot, "--matrix", "\(dir)/matrix.json", "--no-boot", "--plain"])
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        let results = try RunResults.load(from: "\(Self.defaultCache.runs)/latest")
        let good = results.cells.first { $0.target == "riscv64-virt" }
        let bad = results.cells.first { $0.target == "arm-vexpress-a9" }
        #expect(good?.passed == true, "riscv64 should pass: \(String(describing: good?.outcome))")
        #expect(bad?.outcome == .failed(.configDroppedOptions))
        #expect(bad?.config?.mismatches.contains { $0.option == "CONFIG_ARCH_VEXPRESS" } == true)
        #expect(bad?.failedStep == "kernel.config[arm-vexpress-a9/gcc/tiny/initramfs]")
        #expect(results.steps.contains { $0.kind == .kernelBuild && $0.scope.hasPrefix("arm-vexpress-a9") && $0.status == .skipped })
    }

    @Test(.enabled(if: binary != nil, "needs the kmatrix binary"))
    func aSecondRunOnTheSameCacheIsRefused() async throws {
        let cache = NSTemporaryDirectory() + "kmatrix-lock-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let lock = try RunLock(directory: cache)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = ["run", "--project", repositoryRoot, "--cache", cache, "--plain"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        withExtendedLifetime(lock) {}
        #expect(process.terminationStatus == 3)
        #expect(message.contains("another kmatrix run"))
    }
}

/// PIDs (other than this test process) whose command line mentions `text`.
func processesMentioning(_ text: String) -> [Int] {
    let me = Int(getpid())
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int.init).filter { pid in
        guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").contains(text)
    }
}
