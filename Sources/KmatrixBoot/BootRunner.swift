import Foundation
import KmatrixCore
import Subprocess
import SystemPackage
import Synchronization

/// Boots one QEMU machine and watches its serial console until the outcome is known:
/// the console streams to `boot.log` as it arrives and is parsed incrementally; the
/// run ends at the marker, a panic (after its trace), silence, the deadline or QEMU's
/// exit; QEMU's whole process group is gone when `run` returns.
public enum BootRunner {
    /// How often the deadlines are checked while the console is quiet.
    static let tick: Duration = .milliseconds(100)
    static let standardErrorLimit = 64 << 10
    /// How long the console may stay open after QEMU has ended.
    static let endedGrace = 2.0

    /// Boots `invocation` (its accelerator as set) and returns the record; never throws:
    /// a QEMU that cannot be run is a `qemu-error` record.
    /// - Parameters:
    ///   - logPath: the console log; its folder is created. QEMU's stderr goes beside it
    ///     (`<logPath>.stderr`).
    ///   - marker: the line prefix userspace prints when it is up.
    ///   - timeouts: default from the target descriptor.
    ///   - acceleratorReason: recorded as is (the KVM verdict).
    ///   - expected: what the marker must say (machine, kernel release).
    ///   - awaitsTests: init runs test scripts after the marker; the boot ends at their end line.
    public static func run(_ invocation: QemuInvocation, logPath: String, marker: String = BootMarker.prefix,
                           timeouts: BootTimeouts? = nil, acceleratorReason: String? = nil,
                           expected: MarkerExpectation = MarkerExpectation(), awaitsTests: Bool = false) async -> BootRecord {
        let timeouts = timeouts ?? BootTimeouts(invocation.target, rootDevice: invocation.rootDevice)
        let argv = invocation.command.argv
        var record = BootRecord(outcome: .qemuError, reason: "", phases: BootPhases(), seconds: 0, reportedAfter: nil,
                                accelerator: invocation.accelerator, acceleratorReason: acceleratorReason, qemuVersion: nil,
                                command: argv, logPath: logPath, qemuStandardError: "", qemuTermination: nil,
                                kernelRelease: nil, marker: nil, trace: [], lastLines: [])
        record.expected = expected
        guard let binary = ProcessRunner.which(argv[0]) else {
            record.reason = "\(argv[0]) is not installed (apt-get install \(invocation.target.qemu.package))"
            return record
        }
        record.qemuVersion = await QemuVersions.shared.version(of: binary)

        let log: FileDescriptor, errorLog: FileDescriptor
        do {
            try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            log = try FileDescriptor.open(FilePath(logPath), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            errorLog = try FileDescriptor.open(FilePath(logPath + ".stderr"), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            record.reason = "cannot write the boot log \(logPath): \(error)"
            return record
        }
        defer {
            try? log.close()
            try? errorLog.close()
        }

        let start = ContinuousClock.now
        let watched: Watched
        let termination: Termination
        do {
            (watched, termination) = try await ProcessRunner.stream(Command([binary] + argv.dropFirst()), error: .sequence) { execution in
                await watchConsole(execution, start: start, log: ConsoleLog(log, limit: timeouts.logLimitBytes), errorLog: errorLog,
                                   watch: ConsoleWatch(marker: marker, firmwareBanner: invocation.target.qemu.firmware?.banner, expected: expected),
                                   timeouts: timeouts, awaitsTests: awaitsTests)
            }
        } catch {
            record.seconds = (ContinuousClock.now - start).seconds
            record.reason = "cannot run \(binary): \(error.message)"
            return record
        }
        let seconds = (ContinuousClock.now - start).seconds

        var watch = watched.watch
        var verdict = watched.verdict
        if verdict == nil {
            // The console closed on its own: QEMU exited (a guest reboot under -no-reboot,
            // a panic with panic=-1, or QEMU's refusal). Decide from the log and the exit.
            watch.finish(at: seconds)
            var signal: Int32?
            if case .signaled(let number) = termination, !ProcessGroups.stopping { signal = number }
            let exit = QemuExit(status: termination.description, failed: termination != .exited(0),
                                standardError: watched.standardError, signal: signal)
            verdict = BootVerdict.judge(watch, now: seconds, timeouts: timeouts, exit: exit)
        }
        let final = verdict ?? BootVerdict(outcome: .timeout, reason: "interrupted before the outcome was known", evidenceAt: nil)
        record.outcome = final.outcome
        record.reason = watched.interrupted || ProcessGroups.stopping ? "interrupted: \(final.reason)" : final.reason
        record.phases = watch.phases
        record.seconds = seconds
        // For failures: how long the verdict took once the log showed it.
        record.reportedAfter = final.outcome.passed ? nil : final.evidenceAt.map { max(0, (watched.decidedAt ?? seconds) - $0) }
        record.qemuStandardError = watched.standardError
        record.qemuTermination = termination.description
        record.logCutAt = watched.logCutAt
        record.kernelRelease = watch.kernelRelease
        record.marker = watch.markerFields
        record.trace = watch.failure?.trace ?? (final.outcome.passed ? [] : watch.lastOops?.lines ?? [])
        record.kernelWarnings = watch.warnings
        record.kernelPhases = watch.kernelPhases
        record.slowestInitcalls = watch.slowestInitcalls
        record.lastLines = final.outcome.passed ? [] : Array(watch.lastLines.suffix(25))
        return record
    }

    struct Watched: Sendable {
        var watch: ConsoleWatch
        var verdict: BootVerdict?
        var decidedAt: Double?
        var standardError: String
        var interrupted = false
        /// Where boot.log was cut at its size limit, if it was.
        var logCutAt: Int?
    }

    enum Event: Sendable {
        case output([UInt8], Double)
        case outputClosed
        case error([UInt8])
        case errorClosed
        case tick
    }

    static func watchConsole(_ execution: Execution<NoInput, SequenceOutput, SequenceOutput>, start: ContinuousClock.Instant,
                      log: ConsoleLog, errorLog: FileDescriptor, watch: ConsoleWatch,
                      timeouts: BootTimeouts, awaitsTests: Bool = false) async -> Watched {
        func now() -> Double { (ContinuousClock.now - start).seconds }
        var state = Watched(watch: watch, standardError: "")
        if awaitsTests { state.watch.guestTests = GuestTestWatch() }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await chunk in execution.standardOutput {
                        let bytes = chunk.withUnsafeBytes { Array($0) }
                        let time = (ContinuousClock.now - start).seconds
                        // Written as it arrives: the log holds what the guest said even if kmatrix dies.
                        log.append(bytes)
                        continuation.yield(.output(bytes, time))
                    }
                } catch {}
                continuation.yield(.outputClosed)
            }
            group.addTask {
                do {
                    for try await chunk in execution.standardError {
                        let bytes = chunk.withUnsafeBytes { Array($0) }
                        _ = try? errorLog.writeAll(bytes)
                        continuation.yield(.error(bytes))
                    }
                } catch {}
                continuation.yield(.errorClosed)
            }
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: tick) } catch { break }
                    continuation.yield(.tick)
                }
            }

            let pid = execution.processIdentifier.value
            LiveMachines.started()
            var cpu = CPUSamples()
            var watching = WatchGaps()
            var qemuEndedAt: Double?
            var errorBytes: [UInt8] = []
            var outputClosed = false, errorClosed = false
            var closedAt: Double?
            loop: for await event in events {
                switch event {
                case .output(let bytes, let time): state.watch.feed(bytes, at: time)
                case .error(let bytes): if errorBytes.count < standardErrorLimit { errorBytes += bytes.prefix(standardErrorLimit - errorBytes.count) }
                case .outputClosed: outputClosed = true; closedAt = closedAt ?? now()
                case .errorClosed: errorClosed = true
                case .tick:
                    let time = now()
                    watching.tick(at: time)
                    cpu.sample(pid: pid, at: time)
                    if qemuEndedAt == nil, QemuProcess.hasEnded(pid) { qemuEndedAt = time }
                }
                if outputClosed {
                    // QEMU is going away by itself: collect its stderr (bounded wait), then
                    // decide with its exit status, outside this closure.
                    if errorClosed || now() - (closedAt ?? 0) > 1 { break loop }
                    continue
                }
                // Once QEMU has ended, the rest of its console and the console's end are on
                // their way (behind a watcher that was held up, if it was): the verdict is
                // theirs and the exit status's, never silence's or the idle check's. If the
                // console stays open without QEMU (something else holds it), decide from the
                // exit after watching for a while.
                if let ended = qemuEndedAt, now() - max(ended, watching.since) > Self.endedGrace { break loop }
                let share = timeouts.idle.flatMap { cpu.share(over: $0, now: now()) }
                let watchedSince = qemuEndedAt != nil ? now() : watching.since
                if let verdict = BootVerdict.judge(state.watch, now: now(), timeouts: timeouts, recentCPUShare: share, watchedSince: watchedSince) {
                    state.verdict = verdict
                    state.decidedAt = now()
                    break loop
                }
            }
            if Task.isCancelled, state.verdict == nil, !outputClosed { state.interrupted = true }
            state.standardError = String(decoding: errorBytes, as: UTF8.self)
            state.logCutAt = log.cutAt
            // The outcome is known (or QEMU is leaving): stop it and everything it started.
            // Not when a signal is stopping kmatrix: the handler has sent SIGTERM to every
            // group and sends SIGKILL after its grace (KMATRIX_STOP_GRACE) or at a second
            // signal, and QEMU gets that grace like every other child (a SIGKILL 0.5 s
            // after the cancel cut it short, and raced the second signal).
            if !ProcessGroups.stopping {
                await execution.teardown(using: [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .milliseconds(500))])
                ProcessRunner.killGroup(pid)
            }
            LiveMachines.ended()
            continuation.finish()
            group.cancelAll()
        }
        return state
    }

}

/// Since when the boot watcher has been looking without a gap. Its ticks come every 100 ms;
/// one that comes much later means the watcher's threads were held up (other work on a
/// two-core machine's cooperative pool), and output QEMU wrote meanwhile may still be
/// unread. A CI run judged a guest idle for 11 s after `evm: HMAC attrs` at 8 % of a CPU:
/// the guest had panicked and QEMU ended in that time, but the watcher saw its tick before
/// the panic lines it had not read yet.
struct WatchGaps {
    /// A tick later than this after the one before is a gap in watching.
    static let limit = 1.0
    private(set) var since = 0.0
    private var lastTick = 0.0

    mutating func tick(at time: Double) {
        if time - lastTick > Self.limit { since = time }
        lastTick = time
    }
}

/// QEMU's process, as `/proc` shows it.
enum QemuProcess {
    /// True once `pid` has exited: a zombie, or no longer in `/proc`.
    static func hasEnded(_ pid: pid_t) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        // The state follows the command name, which is in parentheses and may hold any byte.
        guard let close = text.lastIndex(of: ")") else { return false }
        let state = text[text.index(after: close)...].drop(while: { $0 == " " }).first
        return state == "Z" || state == "X"
    }
}

/// How much CPU QEMU wanted, sampled on every tick, to tell an idle guest (a halted
/// vCPU costs QEMU almost nothing) from a busy one. Demand is time on a CPU plus time
/// waiting for one (`/proc/PID/task/*/schedstat`), summed over QEMU's threads: a busy guest
/// on a loaded host still demands a whole CPU even while it gets a fraction of one.
/// QEMU starts and ends worker threads all the time; an ended thread's counters vanish
/// from `/proc`, so the total is accumulated per thread (each thread's growth since it was
/// last seen) and never goes down. A plain sum over the threads present did: a worker
/// ending made QEMU's demand negative and an idle verdict out of a busy guest.
struct CPUSamples {
    private var samples: [(time: Double, demand: Double)] = []
    private var seen: [String: Double] = [:]
    private var total = 0.0

    mutating func sample(pid: pid_t, at time: Double) {
        guard let threads = Self.threadDemands(pid) else { return }
        record(threads, at: time)
    }

    /// Adds one reading (thread id → its demand in seconds) taken at `time`.
    mutating func record(_ threads: [String: Double], at time: Double) {
        for (thread, demand) in threads {
            // A thread seen for the first time counts from zero: it started after the last tick.
            total += max(0, demand - (seen[thread] ?? 0))
        }
        seen = threads
        samples.append((time, total))
        if samples.count > 600 { samples.removeFirst(samples.count - 600) }
    }

    /// Demand over the last `window` seconds as a share of one CPU; nil until samples span it.
    func share(over window: Double, now: Double) -> Double? {
        guard let last = samples.last, let first = samples.last(where: { $0.time <= now - window }) else { return nil }
        let elapsed = last.time - first.time
        return elapsed > 0 ? (last.demand - first.demand) / elapsed : nil
    }

    /// Run time plus run-queue wait of each thread of `pid`, in seconds, by thread id.
    static func threadDemands(_ pid: pid_t) -> [String: Double]? {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var demands: [String: Double] = [:]
        for thread in threads {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/schedstat", encoding: .utf8) else { continue }
            let fields = text.split(separator: " ")
            guard fields.count >= 2, let run = Double(fields[0]), let wait = Double(fields[1]) else { continue }
            demands[thread] = (run + wait) / 1e9
        }
        return demands.isEmpty ? nil : demands
    }
}

/// `qemu-system-* --version`, asked once per binary per run.
public actor QemuVersions {
    public static let shared = QemuVersions()
    private var versions: [String: String] = [:]

    public func version(of binary: String) async -> String? {
        if let known = versions[binary] { return known }
        // A hang guard, not a timing: a loaded test phase let 10 s pass before the answer was read.
        guard let output = try? await ProcessRunner.capture(Command([binary, "--version"]), timeout: .seconds(120)),
              output.termination.succeeded,
              let line = output.standardOutput.split(separator: "\n").first else { return nil }
        let version = line.trimmingCharacters(in: .whitespaces)
        versions[binary] = version
        return version
    }
}

extension BootRunner {
    /// Where a cell's boot log and record go unless the caller says otherwise.
    public static func logDirectory(for cell: Cell, workspace: Workspace) -> String { "\(workspace.root)/build/\(cell.id)/boot" }

    /// Boots what kmatrix built for `cell` (`BootImages.forCell`), with the accelerator
    /// `accelerators` picks for its target; `boot.log` goes into `logDirectory`.
    /// Throws only when the cell's images are missing (a host failure naming what to run).
    public static func run(cell: Cell, workspace: Workspace, accelerators: AcceleratorChoice, logDirectory: String? = nil,
                           marker: String = BootMarker.prefix, timeouts: BootTimeouts? = nil,
                           expected: MarkerExpectation = MarkerExpectation()) async throws(KmatrixError) -> BootRecord {
        let images = try BootImages.forCell(cell, workspace: workspace)
        var invocation = images.invocation(target: cell.target, rootDevice: cell.rootDevice)
        let choice = await accelerators.choose(for: cell.target)
        invocation.accelerator = choice.accelerator
        let directory = logDirectory ?? Self.logDirectory(for: cell, workspace: workspace)
        return await run(invocation, logPath: "\(directory)/boot.log", marker: marker, timeouts: timeouts, acceleratorReason: choice.reason,
                         expected: expected)
    }
}
