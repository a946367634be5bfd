import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

@Suite("Jobserver")
struct JobserverTests {
    static var hasMake: Bool { ProcessRunner.which("make") != nil }

    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "kmatrix-jobserver-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A Makefile of `jobs` jobs that each log "+ <ns>" and "- <ns>" around a sleep.
    /// `stubborn` jobs ignore SIGTERM, so only the SIGKILL that follows stops them.
    func writeMakefile(_ dir: String, jobs: Int, sleep: String, stubborn: Bool = false) throws {
        let names = (1...jobs).map { "j\($0)" }.joined(separator: " ")
        let makefile = """
            JOBS := \(names)
            all: $(JOBS)
            $(JOBS):
            \t@echo "+ $$(date +%s%N)" >> $(LOG)
            \t@\(stubborn ? "trap '' TERM; " : "")sleep \(sleep)
            \t@echo "- $$(date +%s%N)" >> $(LOG)
            """
        try makefile.write(toFile: "\(dir)/Makefile", atomically: true, encoding: .utf8)
    }

    /// The most jobs that ran at once, from the start/end stamps in `log`.
    func peakConcurrency(_ log: String) throws -> (peak: Int, events: Int) {
        let events = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line -> (Int, Int)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let time = Int(parts[1]) else { return nil }
            return (time, parts[0] == "+" ? 1 : -1)
        }.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        var running = 0, peak = 0
        for (_, delta) in events { running += delta; peak = max(peak, running) }
        return (peak, events.count)
    }

    /// Three makes that each want 6 parallel jobs share 2 slots: never more than 2 jobs run.
    @Test(.needs(tools: ["make"]))
    func makesShareOnePoolOfSlots() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeMakefile(dir, jobs: 6, sleep: "0.3")
        let jobserver = try Jobserver(slots: 2, directory: dir)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    let command = jobserver.wrap(Command(["make", "-s", "-C", dir, "LOG=\(dir)/log", "-j8"]))
                    let status = try? await jobserver.running {
                        try await ProcessRunner.run(command, logPath: "\(dir)/make-\(index).log", timeout: .seconds(60))
                    }
                    #expect(status == .exited(0))
                }
            }
        }
        let (peak, events) = try peakConcurrency("\(dir)/log")
        #expect(events == 36, "every job of every make ran")
        #expect(peak <= 2, "at most 2 jobs at once, saw \(peak)")
        #expect(peak == 2, "the slots were used")
        #expect(jobserver.available == 2, "every token came back")
    }

    /// A make killed at its deadline: by SIGKILL (its jobs ignore SIGTERM) it takes its
    /// tokens with it; by SIGTERM it returns them, late. Either way, once nothing runs the
    /// pool holds exactly its 2 tokens and the next make really runs two jobs at once.
    @Test(.needs(tools: ["make"]), arguments: [true, false])
    func aKilledMakeDoesNotCostTheNextOneItsSlots(stubborn: Bool) async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/slow", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/fast", withIntermediateDirectories: true)
        try writeMakefile("\(dir)/slow", jobs: 4, sleep: "30", stubborn: stubborn)
        try writeMakefile("\(dir)/fast", jobs: 4, sleep: "0.5")
        let jobserver = try Jobserver(slots: 2, directory: dir)

        jobserver.started()
        let killed = try await ProcessRunner.run(jobserver.wrap(Command(["make", "-s", "-C", "\(dir)/slow", "LOG=\(dir)/slow.log"])),
                                                 logPath: "\(dir)/slow-make.log", timeout: .seconds(2))
        #expect(killed == .timedOut)
        let (slowPeak, _) = try peakConcurrency("\(dir)/slow.log")
        #expect(slowPeak == 2, "the killed make was running 2 jobs")
        if stubborn {
            #expect(jobserver.available < 2, "a make killed by SIGKILL loses tokens (the case this test is about)")
        } else {
            // SIGTERM: make hands its tokens back and the wrapper waits for it, returning its own:
            // nothing is lost, and nothing comes back after the refill (which would make 3).
            #expect(jobserver.available == 2)
        }
        jobserver.finished()
        #expect(jobserver.available == 2, "the pool is refilled once no make runs")

        let status = try await jobserver.running {
            try await ProcessRunner.run(jobserver.wrap(Command(["make", "-s", "-C", "\(dir)/fast", "LOG=\(dir)/fast.log"])),
                                        logPath: "\(dir)/fast-make.log", timeout: .seconds(60))
        }
        #expect(status == .exited(0))
        let (peak, events) = try peakConcurrency("\(dir)/fast.log")
        #expect(events == 8)
        #expect(peak == 2, "the next make got both slots, saw \(peak) jobs at once")
    }

    @Test(.needs(tools: ["make"]))
    func makeExitStatusSurvivesTheWrapper() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "all:\n\t@exit 3\n".write(toFile: "\(dir)/Makefile", atomically: true, encoding: .utf8)
        let jobserver = try Jobserver(slots: 1, directory: dir)
        let status = try await ProcessRunner.run(jobserver.wrap(Command(["make", "-s", "-C", dir])), logPath: "\(dir)/log", timeout: .seconds(30))
        #expect(status == .exited(2), "make reports a failed recipe as 2")
    }
}
