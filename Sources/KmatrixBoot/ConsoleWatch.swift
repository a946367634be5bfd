import Foundation
import KmatrixCore

/// Reads a serial console as it arrives, chunk by chunk (lines may be split anywhere),
/// and keeps what the verdict needs: phase times (host and kernel clock), the marker, the
/// first failure and its trace, the kernel's warnings, and the last lines. Kernel patterns
/// count only on kernel lines: userspace can print "Kernel panic" without making one.
/// Pure: no clock, no I/O; the caller passes arrival times.
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
        /// The deciding line (`Kernel panic - not syncing: ...`), or the oops that led to it.
        public var headline: String
        /// The trace from its first line (which may precede the headline), bounded.
        public var trace: [String]
        /// The kernel printed the end of the trace (`---[ end ...`).
        public var complete: Bool
    }

    public let marker: String
    public let firmwareBanner: String?
    /// What the marker must say (target machine, kernel release); empty checks nothing.
    public let expected: MarkerExpectation
    public private(set) var phases = BootPhases()
    public private(set) var byteCount = 0
    public private(set) var lastOutputAt: Double?
    /// The kernel itself printed something (its banner, a timestamped line, a panic);
    /// firmware output alone does not count.
    public private(set) var kernelSpoke = false
    public private(set) var kernelRelease: String?
    /// Whether the kernel prints printk times (known from its banner line).
    public private(set) var kernelTimestamps: Bool?
    public private(set) var markerFields: [String: String]?
    public private(set) var failure: Failure?
    public private(set) var initPath: String?
    /// Splats the kernel went on from, the first `warningLimit` of them.
    public private(set) var warnings: [KernelWarning] = []
    public private(set) var warningCount = 0
    /// Milestones on the kernel's clock, in the order they happened.
    public private(set) var kernelPhases: [KernelPhase] = []
    /// The slowest initcalls (`initcall_debug`), slowest first.
    public private(set) var slowestInitcalls: [InitcallTime] = []
    /// Set when init runs test scripts after the marker: the boot waits for their end line.
    public var guestTests: GuestTestWatch?

    /// Lines that may open an init failure before the kernel gives up (kept for the trace).
    private var initHints: [String] = []
    /// Lines still to add to the last warning.
    private var warningLinesLeft = 0
    private var pending: [UInt8] = []
    private var recent: [String] = []
    static let recentLimit = 40
    static let traceLimit = 40
    static let warningLimit = 20
    static let initcallLimit = 10

    public init(marker: String = BootMarker.prefix, firmwareBanner: String? = nil, expected: MarkerExpectation = MarkerExpectation()) {
        self.marker = marker
        self.firmwareBanner = firmwareBanner
        self.expected = expected
    }

    /// The console's last lines, the unfinished one included.
    public var lastLines: [String] {
        let partial = Self.clean(pending)
        return partial.isEmpty ? recent : Array((recent + [partial]).suffix(Self.recentLimit))
    }

    /// The last oops the kernel went on from, if any.
    public var lastOops: KernelWarning? { warnings.last { $0.oops } }

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
            // The banner may follow firmware output on its line (SeaBIOS leaves no newline).
            if kernelTimestamps == nil {
                kernelTimestamps = KernelConsole.kernelText(line, timestamps: true).map { $0.time != nil && $0.text.hasPrefix("Linux version ") } ?? false
            }
        }
        if markerFields == nil, let range = line.range(of: marker) {
            markerFields = BootMarker.fields(of: line, after: range)
            phases.userspace = time
            if let uptime = markerFields?["uptime"].flatMap(Double.init) { addPhase(KernelConsole.marker, uptime) }
            return
        }
        guard let (text, kernelTime) = KernelConsole.kernelText(line, timestamps: kernelTimestamps) else { return }
        if let kernelTime {
            kernelSpoke = true
            addPhase(KernelConsole.kernelStart, kernelTime)
        }
        takeKernel(text, line: line, kernelTime: kernelTime, at: time)
    }

    /// A kernel line (its text without the printk time): milestones, warnings, failures.
    private mutating func takeKernel(_ text: Substring, line: String, kernelTime: Double?, at time: Double) {
        if phases.initStarted == nil, let path = Self.initRun(text) {
            phases.initStarted = time
            initPath = path
            if let kernelTime { addPhase(KernelConsole.initStart, kernelTime) }
        }
        if let kernelTime, let milestone = KernelConsole.milestones.first(where: { text.contains($0.text) }) {
            addPhase(milestone.name, kernelTime)
        }
        if let call = KernelConsole.initcall(text) { addInitcall(call) }

        let headline = String(text)
        if text.hasPrefix(KernelConsole.panic) {
            let initFailure = text.contains("No working init found") || text.contains("Attempted to kill init")
            // A panic after an oops (a killed init, `Fatal exception`) is the oops's doing.
            if let oops = lastOops {
                start(.panic, "\(oops.headline); then \(headline)", at: time, trace: oops.lines + [line], complete: line)
            } else {
                start(initFailure ? .initFailed : .panic, headline, at: time, trace: (initFailure ? initHints : []) + [line], complete: line)
            }
            return
        }
        if KernelConsole.stallPatterns.contains(where: text.contains) {
            start(.hang, headline, at: time, trace: [line], complete: line)
            return
        }
        if text.contains("Requested init") || text.contains("Failed to execute") {
            if initHints.count < 8 { initHints.append(line) }
        }
        let oops = KernelConsole.oopsOpeners.contains(where: text.hasPrefix)
        if warningLinesLeft > 0, let last = warnings.indices.last {
            // The splat goes on: an `Oops:` inside a `BUG:` makes it an oops, not a new warning.
            warnings[last].lines.append(line)
            if oops { warnings[last].oops = true }
            warningLinesLeft = text.contains("---[ end ") ? 0 : warningLinesLeft - 1
        } else if oops || KernelConsole.warningOpeners.contains(where: text.hasPrefix) {
            warningCount += 1
            guard warnings.count < Self.warningLimit else { return }
            warnings.append(KernelWarning(headline: headline, lines: [line], seenAt: time, kernelTime: kernelTime, oops: oops))
            warningLinesLeft = KernelConsole.warningLines
        }
    }

    private mutating func start(_ kind: FailureKind, _ headline: String, at time: Double, trace: [String], complete line: String) {
        kernelSpoke = true
        failure = Failure(kind: kind, seenAt: time, headline: headline, trace: Array(trace.prefix(Self.traceLimit)),
                          complete: line.contains("---[ end "))
    }

    private mutating func addPhase(_ name: String, _ seconds: Double) {
        guard !kernelPhases.contains(where: { $0.name == name }) else { return }
        kernelPhases.append(KernelPhase(name: name, seconds: seconds))
    }

    private mutating func addInitcall(_ call: InitcallTime) {
        guard slowestInitcalls.count < Self.initcallLimit || call.milliseconds > (slowestInitcalls.last?.milliseconds ?? 0) else { return }
        slowestInitcalls.append(call)
        slowestInitcalls.sort { $0.milliseconds > $1.milliseconds }
        if slowestInitcalls.count > Self.initcallLimit { slowestInitcalls.removeLast() }
    }

    /// `[    1.234567] ` at the start of a line.
    static func hasPrintkTime(_ line: String) -> Bool { KernelConsole.leadingTime(line[...]) != nil }

    /// The init path of `Run /init as init process` (the kernel's wording since 5.x).
    static func initRun(_ text: Substring) -> String? {
        guard text.hasPrefix("Run ") else { return nil }
        let after = text.dropFirst(4)
        guard let rest = after.range(of: " as init process") else { return nil }
        let path = after[..<rest.lowerBound]
        return path.isEmpty || path.contains(" ") ? nil : String(path)
    }
}
