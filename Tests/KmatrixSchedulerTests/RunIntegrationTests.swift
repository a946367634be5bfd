import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix run` driven as a user drives it: the real binary, real make and compilers.
@Suite("kmatrix run, end to end", .serialized)
struct RunIntegrationTests {
    /// Starts the kmatrix binary with its output going to `log` (or nowhere).
    func launch(_ arguments: [String], log: String? = nil, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(TestCache.kmatrixBinary))
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
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

    /// Interrupted while the kernel compiles, kmatrix exits 130 with no child left, and the
    /// next run resumes from the cache. It must compile, so its cache borrows only sources.
    @Test(.needs(tools: ["make", "x86_64-linux-gnu-gcc"], .kmatrixBinary, .unpackedKernel))
    func anInterruptedRunLeavesNoChildrenAndResumes() async throws {
        let testCache = try TestCache.private("interrupt")
        defer { testCache.remove() }
        try testCache.linkSources()
        let cache = testCache.root
        let log = "\(cache)/run.out"
        let process = try launch(["run", "--project", repositoryRoot, "--cache", cache, "--target", "x86_64-pc", "--no-boot", "--plain"], log: log)
        defer { if process.isRunning { process.terminate() } }
        // Wait for the events, not for a time: the kernel build started (the configuration
        // also runs gcc, on Kconfig's host programs), then a compiler runs in its folder.
        let build = "\(cache)/build/x86_64-pc"
        let buildStarted = "kernel.build[x86_64-pc/gcc/tiny/initramfs] started"
        let compiling = try await waitFor(process, deadline: .seconds(600)) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(buildStarted)
                && processesUsing(build).contains { commandLine(of: $0).contains("gcc") }
        }
        try #require(compiling, "no compiler ever ran under \(build):\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        process.interrupt()
        await process.exited()
        #expect(process.terminationStatus == 130)
        // kmatrix waits for its process groups before it exits: nothing of it may outlive it.
        #expect(processesUsing(cache).isEmpty, "children left behind: \(processesUsing(cache).map(commandLine))")

        // The verified config was published before the interrupt.
        let config = "\(cache)/cache/kernel.config"
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: config)) ?? []).contains { !$0.hasPrefix(".") })
        let results = try RunResults.load(from: "\(cache)/runs/latest")
        #expect(results.run.interrupted)
        #expect(results.cells.first?.outcome == .failed(.interrupted))

        // The next run resumes from the cache: the verified config is not made again.
        let relog = "\(cache)/rerun.out"
        let rerun = try launch(["run", "--project", repositoryRoot, "--cache", cache, "--target", "x86_64-pc", "--no-boot", "--plain"], log: relog)
        defer { if rerun.isRunning { rerun.terminate() } }
        _ = try await waitFor(rerun, deadline: .seconds(600)) {
            ((try? String(contentsOfFile: relog, encoding: .utf8)) ?? "").contains(buildStarted)
        }
        if rerun.isRunning { rerun.interrupt() }
        await rerun.exited()
        let text = (try? String(contentsOfFile: relog, encoding: .utf8)) ?? ""
        // The order of events: the config came from the cache before the build started.
        let cached = try #require(text.range(of: "kernel.config[x86_64-pc/gcc/tiny/initramfs] passed cached"), "rerun output:\n\(text)")
        let started = try #require(text.range(of: buildStarted), "rerun output:\n\(text)")
        #expect(cached.lowerBound < started.lowerBound)
        #expect(rerun.terminationStatus == 130)
        #expect(processesUsing(cache).isEmpty)
    }

    /// Polls `condition` until it holds, the process ends, or the deadline (a guard against
    /// a hung test, not a speed check) passes; returns whether it held.
    func waitFor(_ process: Process, deadline: Duration, _ condition: () -> Bool) async throws -> Bool {
        let end = ContinuousClock.now + deadline
        while ContinuousClock.now < end, process.isRunning {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }

    /// A real failing cell (Kconfig drops what it asked for) beside a good one: the good one
    /// still builds and passes, the run exits 1, and the results say what failed and why.
    /// The good cell's kernel comes from the shared cache's artifacts (the fixture run built
    /// it): only the failing cell's configuration runs here. Run as in a GitHub Actions
    /// step, the failing cell is also an `::error` annotation naming the dropped option.
    @Test(.needs(tools: ["make", "riscv64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc"], .kmatrixBinary, .unpackedKernel, .unpackedBusybox, .busyboxInstall("riscv64"), .busyboxInstall("armhf")))
    func aFailingCellDoesNotStopTheOthers() async throws {
        let testCache = try TestCache.private("failing-cell")
        defer { testCache.remove() }
        try testCache.linkSources()
        try testCache.linkArtifacts()
        // Both cells' busybox builds too (the failing cell's is built all the same), so that
        // they are reused rather than built again.
        for abi in ["riscv64", "armhf"] {
            try await testCache.copy(TestCache.shared.busyboxBuildDirectory(debianArch: abi), to: testCache.busyboxBuildDirectory(debianArch: abi))
        }
        let dir = testCache.root
        var matrix = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/matrix.json"))) as! [String: Any]
        // The copy lives elsewhere: its test scripts are named by absolute paths.
        if var tests = matrix["tests"] as? [String: [String: Any]] {
            for (name, suite) in tests { tests[name]?["scripts"] = (suite["scripts"] as? [String])?.map { "\(repositoryRoot)/\($0)" } }
            matrix["tests"] = tests
        }
        matrix["cells"] = [
            ["target": "riscv64-virt", "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs"],
            ["target": "arm-vexpress-a9", "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs",
             "options": ["# CONFIG_MMU is not set"]],
        ]
        try JSONSerialization.data(withJSONObject: matrix).write(to: URL(fileURLWithPath: "\(dir)/matrix.json"))
        let log = "\(dir)/run.out"
        let process = try launch(["run", "--project", repositoryRoot, "--matrix", "\(dir)/matrix.json", "--cache", testCache.root, "--no-boot", "--plain"],
                                 log: log, environment: ["GITHUB_ACTIONS": "true"])
        await process.exited()
        #expect(process.terminationStatus == 1)
        let annotations = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("::error ") }
        #expect(annotations.count == 1)
        #expect(annotations.first?.hasPrefix("::error title=arm-vexpress-a9/gcc/tiny/initramfs::config-dropped-options: ") == true)
        #expect(annotations.first?.contains("CONFIG_") == true, "the annotation names an option: \(annotations)")
        let results = try RunResults.load(from: "\(testCache.workspace.runs)/latest")
        let good = results.cells.first { $0.target == "riscv64-virt" }
        let bad = results.cells.first { $0.target == "arm-vexpress-a9" }
        #expect(good?.passed == true, "riscv64 should pass: \(String(describing: good?.outcome))")
        #expect(bad?.outcome == .failed(.configDroppedOptions))
        #expect(bad?.config?.mismatches.contains { $0.option == "CONFIG_ARCH_VEXPRESS" } == true)
        #expect(bad?.failedStep == "kernel.config[arm-vexpress-a9/gcc/tiny/initramfs]")
        #expect(results.steps.contains { $0.kind == .kernelBuild && $0.scope.hasPrefix("arm-vexpress-a9") && $0.status == .skipped })
        // Cache keys are content, not paths: the kernel the fixture run built was found here.
        #expect(results.steps.contains { $0.kind == .kernelBuild && $0.scope.hasPrefix("riscv64-virt") && $0.cacheHit })
    }

    @Test(.needs(.kmatrixBinary))
    func aSecondRunOnTheSameCacheIsRefused() async throws {
        let testCache = try TestCache.private("lock")
        defer { testCache.remove() }
        let cache = testCache.root
        let lock = try RunLock(directory: cache)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(TestCache.kmatrixBinary))
        process.arguments = ["run", "--project", repositoryRoot, "--cache", cache, "--plain"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: await pipe.fileHandleForReading.readAll(), as: UTF8.self)
        await process.exited()
        withExtendedLifetime(lock) {}
        #expect(process.terminationStatus == 3)
        #expect(message.contains("another kmatrix run"))
    }
}
