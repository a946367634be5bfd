import Foundation
import KmatrixCore

/// What a boot came to. Raw values are what results and tables print.
public enum BootOutcome: String, Sendable, Codable, CaseIterable {
    /// The userspace marker line arrived.
    case pass
    /// Kernel panic, Oops or BUG: the trace is in the record.
    case panic
    /// No working init, or init exited / was killed.
    case initFailed = "init-failed"
    /// The kernel never spoke on the console (firmware lines do not count): wrong
    /// console, missing UART driver, a hang before the console came up.
    case noConsoleOutput = "no-console-output"
    /// The kernel spoke, then the console went silent before the marker.
    case hang
    /// Output kept coming but the marker did not arrive before the boot deadline.
    case timeout
    /// QEMU refused to start or died with its own error message.
    case qemuError = "qemu-error"
    /// The marker arrived but names another machine or kernel release, or a module did not load.
    case markerMismatch = "marker-mismatch"

    public var passed: Bool { self == .pass }
}

/// Seconds from QEMU's start to each milestone on the console; nil when it never showed.
public struct BootPhases: Sendable, Codable, Equatable {
    public var firstOutput: Double?
    /// The firmware's banner (SeaBIOS, OpenSBI) where the target names one.
    public var firmware: Double?
    public var linuxVersion: Double?
    /// `Run /init as init process` (or whichever init the kernel ran).
    public var initStarted: Double?
    /// The userspace marker line.
    public var userspace: Double?

    public init() {}

    /// Each phase by the name results and reports give it, in boot order.
    public var named: [(name: String, seconds: Double?)] {
        [("first-output", firstOutput), ("firmware", firmware), ("linux", linuxVersion), ("init", initStarted), ("marker", userspace)]
    }
}

/// Deadlines of one boot, in seconds. From the target descriptor unless overridden.
public struct BootTimeouts: Sendable, Codable, Equatable {
    /// The whole boot, QEMU start to marker.
    public var total: Double
    /// Console silence that makes a hang (or, when the kernel never spoke, no-console-output).
    public var silence: Double
    /// How long to keep reading after a panic or oops starts, for its trace, unless the
    /// trace ends (`---[ end`) or QEMU exits first.
    public var traceGrace: Double
    /// A silent guest whose QEMU used (almost) no CPU for this long is stuck waiting for
    /// nothing (init blocked, a halted kernel): a hang, reported without waiting out
    /// `silence`. A guest spinning silently still takes `silence`. nil disables it.
    public var idle: Double?
    /// Below this share of one CPU (run time plus run-queue wait, all QEMU threads) a QEMU
    /// counts as idle. Measured here for guests blocked in init: 3-10 %; a busy guest
    /// demands 100 % or more, however loaded the host.
    public static let idleCPUShare = 0.25
    /// `boot.log` stops growing here (a note line says so); the boot goes on being watched.
    public var logLimitBytes: Int
    public static let defaultLogLimitBytes = 16 << 20

    public init(total: Double, silence: Double, traceGrace: Double = 1.0, idle: Double? = 3.0,
                logLimitBytes: Int = BootTimeouts.defaultLogLimitBytes) {
        self.total = total
        self.silence = silence
        self.traceGrace = traceGrace
        self.idle = idle.map { min($0, silence) }
        self.logLimitBytes = logLimitBytes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(total: try container.decode(Double.self, forKey: .total), silence: try container.decode(Double.self, forKey: .silence),
                  traceGrace: try container.decode(Double.self, forKey: .traceGrace), idle: try container.decodeIfPresent(Double.self, forKey: .idle),
                  logLimitBytes: try container.decodeIfPresent(Int.self, forKey: .logLimitBytes) ?? Self.defaultLogLimitBytes)
    }

    /// The target's allowances; a root device that names its own silence (a disk behind
    /// `rootwait`) replaces the target's, and its idle check with it.
    public init(_ target: Target, rootDevice: RootDeviceSpec? = nil) {
        let qemu = target.qemu
        if let allowed = rootDevice?.silenceSeconds {
            self.init(total: Double(qemu.bootTimeoutSeconds), silence: Double(allowed), idle: nil)
        } else {
            self.init(total: Double(qemu.bootTimeoutSeconds), silence: Double(qemu.silenceSeconds),
                      idle: qemu.idleSeconds > 0 ? qemu.idleSeconds : nil)
        }
    }
}

/// The record of one boot: what happened, when, under what, and where the log is.
public struct BootRecord: Sendable, Codable, Equatable {
    public var outcome: BootOutcome
    /// One line for people: why this outcome.
    public var reason: String
    public var phases: BootPhases
    /// QEMU start until QEMU and its process group were gone.
    public var seconds: Double
    /// From the moment the failure showed (panic line, last console byte) to the verdict.
    public var reportedAfter: Double?
    public var accelerator: Accelerator
    /// Why this accelerator (the KVM probe's verdict, or a choice on the command line).
    public var acceleratorReason: String?
    public var qemuVersion: String?
    public var command: [String]
    public var logPath: String
    /// QEMU's own standard error (bounded), where its refusals are.
    public var qemuStandardError: String
    /// How QEMU ended: `exit status 0`, `killed by signal 15`, ...
    public var qemuTermination: String?
    /// The kernel release from the `Linux version` line.
    public var kernelRelease: String?
    /// Fields of the marker line (`arch`, `release`, `uptime`, ...); nil without the marker.
    public var marker: [String: String]?
    /// The first lines of a panic, oops or init failure.
    public var trace: [String]
    /// The console's last lines when the boot did not pass.
    public var lastLines: [String]
    /// Set when boot.log reached its size limit and was cut there (bytes kept).
    public var logCutAt: Int?
    /// BUG/WARNING/Oops splats the kernel went on from (the first lines of each).
    public var kernelWarnings: [KernelWarning] = []
    /// Milestones on the kernel's own clock (printk time; the marker's uptime), in order.
    public var kernelPhases: [KernelPhase] = []
    /// The slowest initcalls, slowest first (`--initcall-debug`).
    public var slowestInitcalls: [InitcallTime] = []
    /// What the marker was checked against.
    public var expected: MarkerExpectation?
    /// Every boot of the cell when there was more than one (`--retries`, `--boots`), in order.
    public var attempts: [BootAttempt] = []
    /// A boot failed, then passed when booted again.
    public var flaky = false
    /// Per phase over the passing boots of `--boots N`: median, min and max.
    public var spread: [PhaseSpread] = []
    /// Per-test results of the guest's tests (KUnit and scripts); nil when the cell has none.
    public var tests: [GuestTestResult]?

    /// The command as a line a person can paste into a shell.
    public var commandLine: String { command.map(shellQuote).joined(separator: " ") }
}

extension BootRecord {
    enum CodingKeys: String, CodingKey {
        case outcome, reason, phases, seconds, reportedAfter, accelerator, acceleratorReason, qemuVersion, command, logPath
        case qemuStandardError, qemuTermination, kernelRelease, marker, trace, lastLines, logCutAt
        case kernelWarnings, kernelPhases, slowestInitcalls, expected, attempts, flaky, spread
    }

    /// Records written before a field existed read with its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(outcome: try c.decode(BootOutcome.self, forKey: .outcome), reason: try c.decode(String.self, forKey: .reason),
                  phases: try c.decode(BootPhases.self, forKey: .phases), seconds: try c.decode(Double.self, forKey: .seconds),
                  reportedAfter: try c.decodeIfPresent(Double.self, forKey: .reportedAfter),
                  accelerator: try c.decode(Accelerator.self, forKey: .accelerator),
                  acceleratorReason: try c.decodeIfPresent(String.self, forKey: .acceleratorReason),
                  qemuVersion: try c.decodeIfPresent(String.self, forKey: .qemuVersion), command: try c.decode([String].self, forKey: .command),
                  logPath: try c.decode(String.self, forKey: .logPath), qemuStandardError: try c.decode(String.self, forKey: .qemuStandardError),
                  qemuTermination: try c.decodeIfPresent(String.self, forKey: .qemuTermination),
                  kernelRelease: try c.decodeIfPresent(String.self, forKey: .kernelRelease),
                  marker: try c.decodeIfPresent([String: String].self, forKey: .marker), trace: try c.decode([String].self, forKey: .trace),
                  lastLines: try c.decode([String].self, forKey: .lastLines), logCutAt: try c.decodeIfPresent(Int.self, forKey: .logCutAt))
        kernelWarnings = try c.decodeIfPresent([KernelWarning].self, forKey: .kernelWarnings) ?? []
        kernelPhases = try c.decodeIfPresent([KernelPhase].self, forKey: .kernelPhases) ?? []
        slowestInitcalls = try c.decodeIfPresent([InitcallTime].self, forKey: .slowestInitcalls) ?? []
        expected = try c.decodeIfPresent(MarkerExpectation.self, forKey: .expected)
        attempts = try c.decodeIfPresent([BootAttempt].self, forKey: .attempts) ?? []
        flaky = try c.decodeIfPresent(Bool.self, forKey: .flaky) ?? false
        spread = try c.decodeIfPresent([PhaseSpread].self, forKey: .spread) ?? []
    }
}
