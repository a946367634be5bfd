import Foundation
import Synchronization

/// Shows a run as it goes: on a terminal, one live line per cell (or shared step) with
/// its current step, elapsed time and outcome, redrawn in place; elsewhere (CI logs), one
/// timestamped line per step start and end.
public final class Progress: Sendable {
    struct Row {
        var scope: String
        var step = "waiting"
        var started: ContinuousClock.Instant?
        /// The finished step's own time, shown once it ended.
        var finishedSeconds: Double?
        var outcome: String?
        var done = 0
    }

    struct State {
        var rows: [Row]
        var drawn = 0
        var finished = false
    }

    private let state: Mutex<State>
    private let live: Bool
    /// Standard error when standard output carries JSON.
    private let output: FileHandle
    private let runStart = ContinuousClock.now

    public init(scopes: [String], live: Bool, toStandardError: Bool = false) {
        state = Mutex(State(rows: scopes.map { Row(scope: $0) }))
        self.live = live
        output = toStandardError ? .standardError : .standardOutput
    }

    public static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb" }

    public func stepChanged(_ id: StepID, _ outcome: StepOutcome?) {
        let now = ContinuousClock.now
        state.withLock { state in
            if let index = state.rows.firstIndex(where: { $0.scope == id.scope }) {
                if let outcome {
                    state.rows[index].done += 1
                    state.rows[index].started = nil
                    state.rows[index].finishedSeconds = outcome.seconds
                    if outcome.status != .passed { state.rows[index].outcome = "\(outcome.failure?.rawValue ?? outcome.status.rawValue) in \(id.kind.rawValue)" }
                    state.rows[index].step = "\(id.kind.rawValue) \(outcome.status.rawValue)\(outcome.cacheHit ? " (cached)" : "")"
                } else {
                    state.rows[index].step = id.kind.rawValue
                    state.rows[index].started = now
                    state.rows[index].finishedSeconds = nil
                }
            }
        }
        guard !live else { return }
        let elapsed = String(format: "%7.1f", (now - runStart).seconds)
        let stamp = ISO8601DateFormatter().string(from: Date())
        if let outcome {
            let cached = outcome.cacheHit ? " cached" : ""
            let detail = outcome.summary.isEmpty ? "" : ": \(outcome.summary)"
            emit("\(stamp) +\(elapsed)s \(id) \(outcome.status.rawValue)\(cached) (\(String(format: "%.1f", outcome.seconds)) s)\(detail)")
        } else {
            emit("\(stamp) +\(elapsed)s \(id) started")
        }
    }

    /// Marks a cell finished with its outcome (`pass` or a failure class).
    public func cellFinished(_ scope: String, outcome: String) {
        state.withLock { state in
            if let index = state.rows.firstIndex(where: { $0.scope == scope }) {
                state.rows[index].outcome = outcome
                state.rows[index].started = nil
            }
        }
    }

    /// Redraws the live lines every half second until `stop`.
    public func start() -> Task<Void, Never>? {
        guard live else { return nil }
        return Task.detached { [self] in
            while !Task.isCancelled {
                redraw()
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    public func stop(_ task: Task<Void, Never>?) {
        task?.cancel()
        if live { redraw() }
    }

    private func redraw() {
        let now = ContinuousClock.now
        let text: String = state.withLock { state in
            var out = ""
            if state.drawn > 0 { out += "\u{1B}[\(state.drawn)A" }
            let width = state.rows.map(\.scope.count).max() ?? 10
            for row in state.rows {
                let seconds = row.started.map { $0.duration(to: now).seconds } ?? row.finishedSeconds
                let elapsed = seconds.map { String(format: "%6.1fs", $0) } ?? "       "
                let status = row.outcome.map { " -> \($0)" } ?? ""
                out += "\u{1B}[2K\(row.scope.padding(toLength: width, withPad: " ", startingAt: 0))  \(elapsed)  \(row.step)\(status)\n"
            }
            state.drawn = state.rows.count
            return out
        }
        output.write(Data(text.utf8))
    }

    private func emit(_ line: String) {
        output.write(Data((line + "\n").utf8))
    }
}
