import Foundation
import KmatrixCore

/// What /proc says about running processes, for teardown tests. Other people run make
/// and QEMU on this machine at the same time, so processes are matched by process group
/// or by a private path in their command line, never by a bare name.
struct ProcessEntry: Equatable {
    var pid: pid_t
    var parent: pid_t
    var group: pid_t
    var commandLine: String
}

enum ProcessTable {
    static func all() -> [ProcessEntry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> ProcessEntry? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return nil }
            let fields = stat[close.upperBound...].split(separator: " ")
            // After the command name: state, ppid, pgrp.
            guard fields.count > 3, let parent = pid_t(fields[1]), let group = pid_t(fields[2]), fields[0] != "Z" else { return nil }
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(name)/cmdline"))) ?? Data()
            let line = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return ProcessEntry(pid: pid, parent: parent, group: group, commandLine: line)
        }
    }

    /// Live (not zombie) processes in `groups` or whose command line mentions `marker`.
    static func left(groups: Set<pid_t>, marker: String) -> [ProcessEntry] {
        all().filter { groups.contains($0.group) || $0.commandLine.contains(marker) }
    }

    /// Polls until `condition` holds or `limit` passes; returns the time it took, or nil.
    static func waitUntil(_ limit: Duration = .seconds(10), _ condition: () -> Bool) async -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if condition() { return ContinuousClock.now - start }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition() ? ContinuousClock.now - start : nil
    }
}
