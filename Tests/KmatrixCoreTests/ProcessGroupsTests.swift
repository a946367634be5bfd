import Foundation
@testable import KmatrixCore
import Testing

/// Every spawn goes through ProcessRunner, which registers the child's group while it runs
/// and tells the watchdog; a child tree is gone, and unregistered, once the call returns.
@Suite("The process-group registry", .serialized)
struct ProcessGroupsTests {
    /// The groups whose leader's command line carries `marker`.
    func registered(_ marker: String) -> [ProcessGroups.Member] {
        ProcessGroups.live.filter { member in
            guard case .group(let pid) = member,
                  let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
            return String(decoding: raw, as: UTF8.self).contains(marker)
        }
    }

    /// Whether a live (not zombie) process is in group `pid`: killed members of a reaped
    /// leader linger as zombies until init collects them.
    func groupAlive(_ pid: pid_t) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.contains { name in
            guard pid_t(name) != nil, let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return false }
            let fields = stat[close.upperBound...].split(separator: " ")
            return fields.count > 3 && fields[0] != "Z" && pid_t(fields[2]) == pid
        }
    }

    @Test func aChildTreeIsRegisteredWhileItRunsAndGoneWhenCancelled() async throws {
        let marker = "kmatrix-registry-test-\(UUID().uuidString)"
        let task = Task {
            try await ProcessRunner.capture(Command(["sh", "-c", "sleep 300 & sleep 300 & wait", marker]), timeout: .seconds(60))
        }
        var seen: [ProcessGroups.Member] = []
        for _ in 0..<200 where seen.isEmpty {
            seen = registered(marker)
            try await Task.sleep(for: .milliseconds(50))
        }
        let member = try #require(seen.first, "the child was never registered")
        guard case .group(let pid) = member else { return }
        #expect(groupAlive(pid))
        // The watchdog runs in a session of its own, so a terminal's signals miss it.
        let watchdog = Watchdog.shared.pid
        #expect(watchdog > 0 && getsid(watchdog) == watchdog)

        // Cancelled (as a signal cancels a command): the call reports the interruption.
        task.cancel()
        await #expect(throws: KmatrixError.self) { try await task.value }
        #expect(!ProcessGroups.live.contains(member), "still registered after it ended")
        // SIGKILL was sent when the call returned; dying takes the kernel a moment.
        var polls = 0
        while groupAlive(pid), polls < 200 {
            polls += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        print("group \(pid) gone after \(polls) polls of 10 ms")
        #expect(!groupAlive(pid), "a process of group \(pid) outlived the call by 2 s")
    }

    @Test func streamingRegistersAndReadsOutput() async throws {
        let marker = "kmatrix-stream-test-\(UUID().uuidString)"
        let (text, termination) = try await ProcessRunner.stream(Command(["sh", "-c", "echo one; echo two >&2", marker]),
                                                                 error: .combinedWithOutput) { execution in
            let registered = ProcessGroups.live.contains(.group(execution.processIdentifier.value))
            var text = registered ? "registered\n" : "not registered\n"
            for try await chunk in execution.standardOutput { text += chunk.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }
            return text
        }
        #expect(termination == .exited(0))
        #expect(text.hasPrefix("registered\n") && text.contains("one") && text.contains("two"), "\(text)")
    }
}
