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
