import Foundation
import KmatrixCore

/// How QEMU ended, as the verdict needs it.
public struct QemuExit: Sendable, Equatable {
    public var status: String
    public var failed: Bool
    public var standardError: String
    /// Set when something other than kmatrix killed QEMU with a signal (the OOM killer, a
    /// user, a crash): the host's doing, whatever the guest had printed.
    public var signal: Int32?

    public init(status: String, failed: Bool, standardError: String, signal: Int32? = nil) {
        self.status = status
        self.failed = failed
        self.standardError = standardError
        self.signal = signal
    }
}

/// The outcome of a boot from what the console showed so far: nil while it is open.
public struct BootVerdict: Sendable, Equatable {
    public var outcome: BootOutcome
    public var reason: String
    /// When what decided it showed (the panic line, the last output, the deadline).
    public var evidenceAt: Double?

    /// - Parameters:
    ///   - now: seconds since QEMU started.
    ///   - exit: set once QEMU's console closed and it ended.
    ///   - recentCPUShare: QEMU's CPU use over the last `timeouts.idle` seconds, as a share
    ///     of one CPU; nil when unknown.
    ///   - watchedSince: since when the watcher has been looking without a gap. Silence
    ///     counts from the later of it and the last output: a console the watcher was not
    ///     reading (its threads held up by other work) may have said things it has not
    ///     seen yet, and that is not silence.
    public static func judge(_ watch: ConsoleWatch, now: Double, timeouts: BootTimeouts, exit: QemuExit? = nil,
                             recentCPUShare: Double? = nil, watchedSince: Double = 0) -> BootVerdict? {
        if let fields = watch.markerFields {
            let mismatches = watch.expected.mismatches(fields)
            guard mismatches.isEmpty else {
                return BootVerdict(outcome: .markerMismatch, reason: "the marker arrived, but " + mismatches.joined(separator: "; "),
                                   evidenceAt: watch.phases.userspace)
            }
            let warned = watch.warningCount > 0 ? " (after \(watch.warningCount) kernel warning\(watch.warningCount == 1 ? "" : "s"))" : ""
            if watch.guestTests?.ended ?? true {
                return BootVerdict(outcome: .pass, reason: "the marker \(watch.marker) arrived\(warned)", evidenceAt: watch.phases.userspace)
            }
            if watch.failure == nil {
                // The guest runs its tests, each within its own limit: no silence or idle rule
                // (a test may sleep), only the deadline, which counts the tests' limits.
                guard exit != nil || now >= timeouts.total else { return nil }
                let why = exit != nil ? "the guest stopped before its tests ended" : String(format: "the tests did not end within the %.0f s deadline", timeouts.total)
                return BootVerdict(outcome: .pass, reason: "the marker \(watch.marker) arrived\(warned); \(why)", evidenceAt: watch.phases.userspace)
            }
        }
        if let failure = watch.failure, failure.complete || exit != nil || now - max(failure.seenAt, watchedSince) >= timeouts.traceGrace {
            let outcome: BootOutcome = switch failure.kind {
            case .panic: .panic
            case .initFailed: .initFailed
            case .hang: .hang
            }
            return BootVerdict(outcome: outcome, reason: failure.headline, evidenceAt: failure.seenAt)
        }
        // The host's doing comes first; otherwise an oops the kernel went on from is why the
        // guest then stopped, stalled or never got to the marker.
        guard let verdict = ending(watch, now: now, timeouts: timeouts, exit: exit, recentCPUShare: recentCPUShare, watchedSince: watchedSince) else { return nil }
        if verdict.outcome != .qemuError, let oops = watch.lastOops {
            return BootVerdict(outcome: .panic, reason: "\(oops.headline); then \(verdict.reason)", evidenceAt: oops.seenAt)
        }
        return verdict
    }

    /// The verdict when neither the marker nor a kernel failure decided.
    static func ending(_ watch: ConsoleWatch, now: Double, timeouts: BootTimeouts, exit: QemuExit?, recentCPUShare: Double?, watchedSince: Double) -> BootVerdict? {
        if let exit, let signal = exit.signal {
            let name = String(cString: strsignal(signal))
            return BootVerdict(outcome: .qemuError, reason: "QEMU was killed by signal \(signal) (\(name))"
                + (watch.kernelSpoke ? " after the kernel had printed; the guest is not to blame" : ""), evidenceAt: now)
        }
        if let exit {
            let message = exit.standardError.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.prefix(3).joined(separator: " / ")
            if exit.failed, !message.isEmpty {
                return BootVerdict(outcome: .qemuError, reason: "QEMU failed (\(exit.status)): \(message)", evidenceAt: now)
            }
            if exit.failed, watch.byteCount == 0 {
                return BootVerdict(outcome: .qemuError, reason: "QEMU ended (\(exit.status)) before any output", evidenceAt: now)
            }
            if watch.phases.initStarted != nil {
                return BootVerdict(outcome: .initFailed, reason: "init \(watch.initPath ?? "") ran but the guest stopped (QEMU \(exit.status)) without printing \(watch.marker)", evidenceAt: now)
            }
            if watch.kernelSpoke {
                return BootVerdict(outcome: .panic, reason: "the guest reset before init ran, with no panic message (QEMU \(exit.status))", evidenceAt: now)
            }
            return BootVerdict(outcome: .noConsoleOutput, reason: "QEMU ended (\(exit.status)) and the kernel printed nothing on the console", evidenceAt: now)
        }
        let quietSince = max(watch.lastOutputAt ?? 0, watchedSince)
        if let idle = timeouts.idle, now - quietSince >= idle, let share = recentCPUShare, share < BootTimeouts.idleCPUShare {
            let usage = String(format: "QEMU asked for %.0f%% of a CPU", share * 100)
            if !watch.kernelSpoke {
                return BootVerdict(outcome: .noConsoleOutput, reason: String(format: "the kernel printed nothing on the console and the guest is idle (%@ over the last %.0f s)", usage, idle), evidenceAt: quietSince)
            }
            let last = watch.lastLines.last(where: { !$0.isEmpty }) ?? ""
            return BootVerdict(outcome: .hang, reason: String(format: "the guest went idle before the marker: no console output for %.1f s and %@; last line: %@", now - quietSince, usage, last), evidenceAt: quietSince)
        }
        if now - quietSince >= timeouts.silence {
            if !watch.kernelSpoke {
                let firmware = watch.byteCount > 0 ? " (only firmware output)" : ""
                return BootVerdict(outcome: .noConsoleOutput, reason: String(format: "the kernel printed nothing on the console in %.0f s%@", now, firmware), evidenceAt: quietSince)
            }
            let last = watch.lastLines.last(where: { !$0.isEmpty }) ?? ""
            return BootVerdict(outcome: .hang, reason: String(format: "no console output for %.0f s before the marker; last line: %@", now - quietSince, last), evidenceAt: quietSince)
        }
        if now >= timeouts.total {
            if !watch.kernelSpoke {
                return BootVerdict(outcome: .noConsoleOutput, reason: String(format: "the kernel printed nothing on the console in %.0f s", now), evidenceAt: now)
            }
            return BootVerdict(outcome: .timeout, reason: String(format: "no marker after %.0f s of boot", timeouts.total), evidenceAt: now)
        }
        return nil
    }
}
