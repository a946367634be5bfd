import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import Synchronization
import Testing

@Suite("Step graph")
struct StepGraphTests {
    final class Counter: Sendable {
        let runs = Mutex<[StepID: Int]>([:])
        func hit(_ id: StepID) { runs.withLock { $0[id, default: 0] += 1 } }
        func count(_ id: StepID) -> Int { runs.withLock { $0[id] ?? 0 } }
    }

    func pass(_ counter: Counter, _ id: StepID) -> @Sendable ([StepID: StepOutcome]) async -> StepOutcome {
        { _ in counter.hit(id); return StepOutcome(status: .passed, summary: id.description) }
    }

    @Test func aFailingCellDoesNotStopTheOthers() async {
        let counter = Counter()
        let source = StepID(.sourceKernel, "linux")
        var graph = StepGraph()
        graph.add(StepNode(source, pass(counter, source)))
        for cell in ["a", "b", "c"] {
            let build = StepID(.kernelBuild, cell), boot = StepID(.boot, cell)
            graph.add(StepNode(build, after: [source]) { _ in
                counter.hit(build)
                return cell == "b" ? .failed(.buildFailed, "make exited 2") : StepOutcome(status: .passed)
            })
            graph.add(StepNode(boot, after: [build], pass(counter, boot)))
        }
        // The shared source step is added again by every cell in real plans: it must stay one node.
        graph.add(StepNode(source, pass(counter, source)))
        #expect(graph.validate().isEmpty)
        let outcomes = await graph.run()
        #expect(counter.count(source) == 1)
        #expect(outcomes[StepID(.boot, "a")]?.status == .passed)
        #expect(outcomes[StepID(.boot, "c")]?.status == .passed)
        #expect(outcomes[StepID(.kernelBuild, "b")]?.failure == .buildFailed)
        #expect(outcomes[StepID(.boot, "b")]?.status == .skipped)
        #expect(counter.count(StepID(.boot, "b")) == 0)
    }

    @Test func dependenciesSeeTheirInputsOutputs() async {
        let a = StepID(.kernelConfig, "a"), b = StepID(.kernelBuild, "b")
        var graph = StepGraph()
        graph.add(StepNode(a) { _ in StepOutcome(status: .passed, output: .source(tree: "/p")) })
        graph.add(StepNode(b, after: [a]) { inputs in
            guard case .source(let tree)? = inputs[a]?.output, tree == "/p" else { return .failed(.infrastructure, "did not see /p") }
            return StepOutcome(status: .passed)
        })
        #expect(await graph.run()[b]?.status == .passed)
    }

    @Test func independentStepsRunConcurrently() async {
        let active = Mutex((now: 0, peak: 0))
        var graph = StepGraph()
        for index in 0..<4 {
            graph.add(StepNode(StepID(.boot, "\(index)")) { _ in
                active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                try? await Task.sleep(for: .milliseconds(200))
                active.withLock { $0.now -= 1 }
                return StepOutcome(status: .passed)
            })
        }
        _ = await graph.run()
        #expect(active.withLock { $0.peak } > 1)
    }

    @Test func cyclesAndUnknownDependenciesAreReported() {
        var graph = StepGraph()
        let a = StepID(.rootfs, "1"), b = StepID(.boot, "1")
        graph.add(StepNode(a, after: [b]) { _ in StepOutcome(status: .passed) })
        graph.add(StepNode(b, after: [a, StepID(.dtbCheck, "1")]) { _ in StepOutcome(status: .passed) })
        let problems = graph.validate()
        #expect(problems.contains { $0.contains("dtb.check[1]") })
        #expect(problems.contains { $0.hasPrefix("cycle") })
    }

    @Test func cancellationMarksStepsInterrupted() async {
        var graph = StepGraph()
        let slow = StepID(.kernelBuild, "a"), after = StepID(.boot, "a")
        graph.add(StepNode(slow) { _ in
            try? await Task.sleep(for: .seconds(30))
            return Task.isCancelled ? .failed(.infrastructure, "stopped") : StepOutcome(status: .passed)
        })
        graph.add(StepNode(after, after: [slow]) { _ in StepOutcome(status: .passed) })
        let task = Task { await graph.run() }
        try? await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let outcomes = await task.value
        #expect(outcomes[slow]?.status == .interrupted)
        #expect(outcomes[after]?.status == .interrupted)
    }
}

@Suite("Artifact cache and run lock")
struct ArtifactCacheTests {
    let root = NSTemporaryDirectory() + "kmatrix-cache-test-\(UUID().uuidString)"

    struct Inputs: Encodable { var source: String; var options: [String: String] }

    @Test func keysDependOnContentNotOrder() {
        let a = ArtifactCache.key(Inputs(source: "s", options: ["A": "y", "B": "n"]))
        let b = ArtifactCache.key(Inputs(source: "s", options: ["B": "n", "A": "y"]))
        let c = ArtifactCache.key(Inputs(source: "s", options: ["A": "y", "B": "y"]))
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 64)
    }

    @Test func publishesAtomicallyAndNeverCachesFailures() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        let inputs = Inputs(source: "s", options: [:])
        let key = ArtifactCache.key(inputs)
        #expect(cache.lookup(kind: "kernel.build", key: key) == nil)
        let failed = try await cache.publish(kind: "kernel.build", key: key, inputs: inputs) { staging in
            _ = FileManager.default.createFile(atPath: "\(staging)/half", contents: Data("x".utf8))
            return false
        }
        #expect(failed == nil)
        #expect(cache.lookup(kind: "kernel.build", key: key) == nil)
        let path = try await cache.publish(kind: "kernel.build", key: key, inputs: inputs) { staging in
            FileManager.default.createFile(atPath: "\(staging)/bzImage", contents: Data("kernel".utf8))
        }
        #expect(path == cache.lookup(kind: "kernel.build", key: key))
        #expect(FileManager.default.contents(atPath: "\(path!)/bzImage") == Data("kernel".utf8))
        // Nothing half-made is left beside it.
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(root)/kernel.build")
        #expect(names == [key])
    }

    @Test func anInterruptedEntryIsNotTakenForFinished() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = ArtifactCache(root: root)
        try FileManager.default.createDirectory(atPath: cache.entry(kind: "rootfs", key: "k"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/rootfs/.staging-k-1-2", withIntermediateDirectories: true)
        #expect(cache.lookup(kind: "rootfs", key: "k") == nil)
        cache.sweepStaging()
        #expect(!FileManager.default.fileExists(atPath: "\(root)/rootfs/.staging-k-1-2"))
    }

    @Test func aSecondRunOnTheSameCacheIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = try RunLock(directory: root)
        #expect(throws: KmatrixError.self) { try RunLock(directory: root) }
        withExtendedLifetime(first) {}
    }
}

@Suite("Jobserver")
struct JobserverTests {
    static var hasMake: Bool { ProcessRunner.which("make") != nil }

    /// Three makes that each want 6 parallel jobs share 2 slots: never more than 2 jobs run.
    @Test(.enabled(if: hasMake, "needs GNU make"))
    func makesShareOnePoolOfSlots() async throws {
        let dir = NSTemporaryDirectory() + "kmatrix-jobserver-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Each job records its start and end with a timestamp; overlaps are counted afterwards.
        let makefile = """
            JOBS := j1 j2 j3 j4 j5 j6
            all: $(JOBS)
            $(JOBS):
            \t@echo "+ $$(date +%s%N)" >> $(LOG)
            \t@sleep 0.3
            \t@echo "- $$(date +%s%N)" >> $(LOG)
            """
        try makefile.write(toFile: "\(dir)/Makefile", atomically: true, encoding: .utf8)
        let jobserver = try Jobserver(slots: 2, directory: dir)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    let command = jobserver.wrap(Command(["make", "-s", "-C", dir, "LOG=\(dir)/log", "-j8"]))
                    let status = try? await ProcessRunner.run(command, logPath: "\(dir)/make-\(index).log", timeout: .seconds(60))
                    #expect(status == .exited(0))
                }
            }
        }
        let events = try String(contentsOfFile: "\(dir)/log", encoding: .utf8).split(separator: "\n").compactMap { line -> (Int, Int)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let time = Int(parts[1]) else { return nil }
            return (time, parts[0] == "+" ? 1 : -1)
        }.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        #expect(events.count == 36, "every job of every make ran")
        var running = 0, peak = 0
        for (_, delta) in events { running += delta; peak = max(peak, running) }
        #expect(peak <= 2, "at most 2 jobs at once, saw \(peak)")
        #expect(peak == 2, "the slots were used")
        // Every token came back: the pool can still hand out both slots at once.
        await jobserver.acquire(priority: 0)
        await jobserver.acquire(priority: 0)
        jobserver.release()
        jobserver.release()
    }

    @Test(.enabled(if: hasMake, "needs GNU make"))
    func makeExitStatusSurvivesTheWrapper() async throws {
        let dir = NSTemporaryDirectory() + "kmatrix-jobserver-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "all:\n\t@exit 3\n".write(toFile: "\(dir)/Makefile", atomically: true, encoding: .utf8)
        let jobserver = try Jobserver(slots: 1, directory: dir)
        let status = try await ProcessRunner.run(jobserver.wrap(Command(["make", "-s", "-C", dir])), logPath: "\(dir)/log", timeout: .seconds(30))
        #expect(status == .exited(2), "make reports a failed recipe as 2")
    }
}

@Suite("Disk image sizes")
struct DiskImageSizeTests {
    /// QEMU takes only power-of-two SD cards ("Invalid SD card size: 3 MiB").
    @Test func diskImagesArePowersOfTwo() {
        #expect(powerOfTwoKiB(3 * 1024) == 4096)
        #expect(powerOfTwoKiB(4096) == 4096)
        #expect(powerOfTwoKiB(4097) == 8192)
        #expect(powerOfTwoKiB(100_000) == 131_072)
    }
}
