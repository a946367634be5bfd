import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler

/// How often each cell boots and what a boot records beyond its verdict: `run`'s and
/// `boot`'s `--retries`, `--boots` and `--initcall-debug`.
struct BootTrialOptions: ParsableArguments {
    @Option(help: "Boot a cell whose boot failed again, up to N more times; failed then passed is 'flaky' (not a failure of the run).")
    var retries = 0
    @Option(help: "Boot each cell N times and record each phase's median, min and max.") var boots = 1
    @Flag(help: "Boot with initcall_debug (and loglevel=8) and record each cell's slowest initcalls.") var initcallDebug = false

    func validate() throws {
        guard retries >= 0 else { throw KmatrixError.badInput("--retries \(retries): must be 0 or more") }
        guard boots >= 1 else { throw KmatrixError.badInput("--boots \(boots): must be 1 or more") }
    }

    func apply(to settings: inout BootSettings) {
        settings.retries = retries
        settings.boots = boots
        settings.initcallDebug = initcallDebug
    }
}

/// The lines `boot` prints about a record beyond its verdict: attempts, spread, kernel
/// warnings, kernel-clock phases, slowest initcalls.
func bootDetails(_ record: BootRecord) -> [String] {
    var lines: [String] = []
    for attempt in record.attempts where record.attempts.count > 1 {
        lines.append("boot \(attempt.number): \(attempt.outcome.rawValue) (\(bootSeconds(attempt.seconds))), log \(attempt.logPath)")
    }
    for spread in record.spread {
        lines.append(String(format: "%@: median %.3f s, min %.3f, max %.3f over %d boots", spread.name, spread.median, spread.min, spread.max, spread.samples))
    }
    if !record.kernelPhases.isEmpty {
        lines.append("kernel clock: " + record.kernelPhases.map { String(format: "%@ %.3f s", $0.name, $0.seconds) }.joined(separator: ", "))
    }
    for warning in record.kernelWarnings { lines.append("kernel warning\(warning.oops ? " (oops)" : ""): \(warning.headline)") }
    if !record.slowestInitcalls.isEmpty {
        lines.append("slowest initcalls: " + record.slowestInitcalls.prefix(5).map { String(format: "%@ %.2f ms", $0.name, $0.milliseconds) }.joined(separator: ", "))
    }
    return lines
}
