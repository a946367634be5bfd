import Foundation
import KmatrixCore

/// Reads a serial console as it arrives, chunk by chunk (lines may be split anywhere),
/// and keeps what the verdict needs: phase times, the marker, the first failure and its
/// trace, and the last lines. Pure: no clock, no I/O; the caller passes arrival times.
public struct ConsoleWatch: Sendable {
    public enum FailureKind: String, Sendable {
        case panic, initFailed
        /// The kernel itself reports that it is stuck (RCU stall, lockup, hung task).
        case hang
    }

    public struct Failure: Sendable, Equatable {
        public var kind: FailureKind
        /// When the deciding line arrived.
        public var seenAt: Double
        /// The deciding line (`Kernel panic - not syncing: ...`, `Unable to handle kernel ...`).
        public var headline: String
        /// The trace from its first line (which may precede the headline), bounded.
        public var trace: [String]
        /// The kernel printed the end of the trace (`---[ end ...`).
        public var complete: Bool
    }

    public let marker: String
    public let firmwareBanner: String?
    public private(set) var phases = BootPhases()
    public private(set) var byteCount = 0
    public private(set) var lastOutputAt: Double?
    /// The kernel itself printed something (its banner, a timestamped line, a panic);
    /// firmware output alone does not count.
    public private(set) var kernelSpoke = false
    public private(set) var kernelRelease: String?
    public private(set) var markerFields: [String: String]?
    public private(set) var failure: Failure?
    public private(set) var initPath: String?
    /// Set when init runs test scripts after the marker: the boot waits for their end line.
    public var guestTests: GuestTestWatch?

    /// Lines that may open an init failure before the kernel gives up (kept for the trace).
    private var initHints: [String] = []
    private var pending: [UInt8] = []
    private var recent: [String] = []
    static let recentLimit = 40
    static let traceLimit = 40

    public init(marker: String = BootMarker.prefix, firmwareBanner: String? = nil) {
        self.marker = marker
        self.firmwareBanner = firmwareBanner
    }

    /// The console's last lines, the unfinished one included.
    public var lastLines: [String] {
        let partial = Self.clean(pending)
        return partial.isEmpty ? recent : Array((recent + [partial]).suffix(Self.recentLimit))
    }

    public mutating func feed(_ bytes: some Collection<UInt8>, at time: Double) {
        guard !bytes.isEmpty else { return }
        if phases.firstOutput == nil { phases.firstOutput = time }
        byteCount += bytes.count
        lastOutputAt = time
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                let line = Self.clean(pending)
                pending.removeAll(keepingCapacity: true)
                take(line, at: time)
            } else if pending.count < 16_384 {
                pending.append(byte)
            }
        }
    }

    /// The console ended (QEMU exited): the unfinished line counts as a line.
    public mutating func finish(at time: Double) {
        guard !pending.isEmpty else { return }
        let line = Self.clean(pending)
        pending.removeAll()
        take(line, at: time)
    }

    /// Printable text of a console line: escape sequences (SeaBIOS clears the screen),
    /// carriage returns and other control bytes removed.
    static func clean(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "[") {
                    index += 1
                    // CSI: parameters and intermediates, then one final byte in 0x40...0x7E.
                    while index < bytes.count, !(0x40...0x7E).contains(bytes[index]) { index += 1 }
                }
                index += 1
                continue
            }
            if byte >= 0x20 || byte == 0x09 { out.append(byte) }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let oopsPatterns = ["Unable to handle kernel", "Internal error: Oops", "BUG: ", "Oops: ", "Oops - ",
                               "general protection fault", "kernel BUG at"]
    /// The kernel saying it is stuck: no need to wait out the silence.
    static let stallPatterns = ["self-detected stall", "detected stalls on CPU", "soft lockup", "hard LOCKUP", "blocked for more than"]

    private mutating func take(_ line: String, at time: Double) {
        recent.append(line)
        if recent.count > Self.recentLimit { recent.removeFirst(recent.count - Self.recentLimit) }

        if markerFields != nil { guestTests?.take(line) }
        if var failure {
            if failure.trace.count < Self.traceLimit, !failure.complete {
                failure.trace.append(line)
                if line.contains("---[ end ") { failure.complete = true }
                self.failure = failure
            }
            return
        }
        if let banner = firmwareBanner, phases.firmware == nil, line.contains(banner) { phases.firmware = time }
        if let range = line.range(of: "Linux version ") {
            if phases.linuxVersion == nil { phases.linuxVersion = time }
            kernelSpoke = true
            kernelRelease = line[range.upperBound...].split(separator: " ").first.map(String.init)
        } else if Self.hasPrintkTime(line) {
            kernelSpoke = true
        }
        if phases.initStarted == nil, let path = Self.initRun(line) {
            phases.initStarted = time
            initPath = path
        }
        if markerFields == nil, let range = line.range(of: marker) {
            markerFields = BootMarker.fields(of: line, after: range)
            phases.userspace = time
            return
        }

        let initFailure = line.contains("No working init found") || line.contains("Attempted to kill init")
        if line.contains("Requested init") || line.contains("Failed to execute") {
            if initHints.count < 8 { initHints.append(line) }
        }
        if initFailure {
            start(.initFailed, line, at: time, trace: initHints + [line])
        } else if Self.stallPatterns.contains(where: line.contains) {
            start(.hang, line, at: time, trace: [line])
        } else if line.contains("Kernel panic - not syncing") || Self.oopsPatterns.contains(where: line.contains) {
            start(.panic, line, at: time, trace: [line])
        }
    }

    private mutating func start(_ kind: FailureKind, _ line: String, at time: Double, trace: [String]) {
        kernelSpoke = true
        failure = Failure(kind: kind, seenAt: time, headline: Self.withoutPrintkTime(line), trace: trace,
                          complete: line.contains("---[ end "))
    }

    /// `[    1.234567] ` at the start of a line.
    static func hasPrintkTime(_ line: String) -> Bool {
        guard line.first == "[", let close = line.firstIndex(of: "]") else { return false }
        let inner = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        return !inner.isEmpty && inner.allSatisfy { $0.isNumber || $0 == "." }
    }

    static func withoutPrintkTime(_ line: String) -> String {
        guard hasPrintkTime(line), let close = line.firstIndex(of: "]") else { return line }
        return line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
    }

    /// The init path of `Run /init as init process` (the kernel's wording since 5.x).
    static func initRun(_ line: String) -> String? {
        guard let run = line.range(of: "Run "), let rest = line[run.upperBound...].range(of: " as init process") else { return nil }
        let path = line[run.upperBound..<rest.lowerBound]
        return path.isEmpty || path.contains(" ") ? nil : String(path)
    }
}

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
    public static func judge(_ watch: ConsoleWatch, now: Double, timeouts: BootTimeouts, exit: QemuExit? = nil,
                             recentCPUShare: Double? = nil) -> BootVerdict? {
        if watch.markerFields != nil, watch.guestTests?.ended ?? true {
            return BootVerdict(outcome: .pass, reason: "the marker \(watch.marker) arrived", evidenceAt: watch.phases.userspace)
        }
        if watch.markerFields != nil, watch.failure == nil {
            // The guest runs its tests, each within its own limit: no silence or idle rule
            // (a test may sleep), only the deadline, which counts the tests' limits.
            guard exit != nil || now >= timeouts.total else { return nil }
            let why = exit != nil ? "the guest stopped before its tests ended" : String(format: "the tests did not end within the %.0f s deadline", timeouts.total)
            return BootVerdict(outcome: .pass, reason: "the marker \(watch.marker) arrived; \(why)", evidenceAt: watch.phases.userspace)
        }
        if let failure = watch.failure, failure.complete || exit != nil || now - failure.seenAt >= timeouts.traceGrace {
            let outcome: BootOutcome = switch failure.kind {
            case .panic: .panic
            case .initFailed: .initFailed
            case .hang: .hang
            }
            return BootVerdict(outcome: outcome, reason: failure.headline, evidenceAt: failure.seenAt)
        }
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
        let quietSince = watch.lastOutputAt ?? 0
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
