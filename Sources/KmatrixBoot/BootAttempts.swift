import Foundation
import KmatrixCore

/// One boot of a cell among several (`--retries`, `--boots`).
public struct BootAttempt: Sendable, Codable, Equatable {
    /// 1, 2, ...
    public var number: Int
    public var outcome: BootOutcome
    public var reason: String
    public var seconds: Double
    public var logPath: String

    public init(number: Int, outcome: BootOutcome, reason: String, seconds: Double, logPath: String) {
        self.number = number
        self.outcome = outcome
        self.reason = reason
        self.seconds = seconds
        self.logPath = logPath
    }
}

/// One phase over several passing boots: how much it moves from boot to boot.
public struct PhaseSpread: Sendable, Codable, Equatable {
    /// A host phase (`linux`, `init`, `marker`, seconds since QEMU started) or a kernel-clock
    /// phase (`kernel:run-init`, printk seconds).
    public var name: String
    public var median: Double
    public var min: Double
    public var max: Double
    public var samples: Int

    public init(name: String, values: [Double]) {
        let sorted = values.sorted()
        self.name = name
        samples = sorted.count
        min = sorted.first ?? 0
        max = sorted.last ?? 0
        let middle = sorted.count / 2
        median = sorted.isEmpty ? 0 : sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The spread of every phase the boots share, host phases first.
    public static func of(_ records: [BootRecord]) -> [PhaseSpread] {
        var names: [String] = []
        var values: [String: [Double]] = [:]
        for record in records {
            let named = record.phases.named.compactMap { name, value in value.map { (name, $0) } }
                + record.kernelPhases.map { ("kernel:\($0.name)", $0.seconds) }
            for (name, value) in named {
                if values[name] == nil { names.append(name) }
                values[name, default: []].append(value)
            }
        }
        return names.map { PhaseSpread(name: $0, values: values[$0] ?? []) }
    }
}

/// Boots a cell `boots` times, booting a failed boot again up to `retries` times in all:
/// a boot that fails and then passes makes the cell flaky; one that still fails decides.
public enum BootAttempts {
    /// The log of attempt `number` beside `logPath` (`boot.log` -> `boot.attempt-2.log`);
    /// one boot keeps `logPath` itself.
    public static func logPath(_ logPath: String, attempt number: Int, single: Bool) -> String {
        guard !single else { return logPath }
        let stem = logPath.hasSuffix(".log") ? String(logPath.dropLast(4)) : logPath
        return "\(stem).attempt-\(number).log"
    }

    /// - Parameter boot: boots once, its console to the log path it is given.
    /// - Returns: the deciding record (the first boot that failed for good, else the last),
    ///   with every attempt, whether it was flaky, and the phases' spread over passing boots.
    public static func run(boots: Int, retries: Int, logPath: String,
                           boot: (_ logPath: String) async -> BootRecord) async -> BootRecord {
        let single = boots <= 1 && retries <= 0
        var attempts: [BootAttempt] = []
        var passed: [BootRecord] = []
        var retriesLeft = max(0, retries)
        var failedOnce = false
        var last: BootRecord?
        var booted = 0
        while booted < max(1, boots), !Task.isCancelled {
            let record = await boot(Self.logPath(logPath, attempt: attempts.count + 1, single: single))
            attempts.append(BootAttempt(number: attempts.count + 1, outcome: record.outcome, reason: record.reason,
                                        seconds: record.seconds, logPath: record.logPath))
            last = record
            if record.outcome.passed {
                passed.append(record)
                booted += 1
                continue
            }
            failedOnce = true
            // A boot interrupted, or a QEMU that cannot run, is not worth booting again.
            guard retriesLeft > 0, !ProcessGroups.stopping, record.outcome != .qemuError || record.qemuTermination != nil else { break }
            retriesLeft -= 1
        }
        guard var record = last else {
            return BootRecord(outcome: .timeout, reason: "interrupted before the first boot", phases: BootPhases(), seconds: 0,
                              reportedAfter: nil, accelerator: .tcg, acceleratorReason: nil, qemuVersion: nil, command: [], logPath: logPath,
                              qemuStandardError: "", qemuTermination: nil, kernelRelease: nil, marker: nil, trace: [], lastLines: [])
        }
        if !single { record.attempts = attempts }
        if record.outcome.passed, failedOnce {
            record.flaky = true
            let failures = attempts.filter { !$0.outcome.passed }
            record.reason = "flaky: passed on boot \(attempts.count) after \(failures.map { "\($0.outcome.rawValue) (\($0.reason))" }.joined(separator: ", "))"
        }
        if passed.count > 1 { record.spread = PhaseSpread.of(passed) }
        return record
    }
}
