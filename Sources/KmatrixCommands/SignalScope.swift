import Dispatch
import Foundation
import KmatrixCore
import Synchronization

/// Signal handling for every command, installed once by `KmatrixMain.run`. The first INT,
/// TERM, HUP or QUIT cancels the running commands (their cooperative teardown runs),
/// sends SIGTERM to every process group kmatrix started, SIGKILL after `grace`, then
/// exits 128 + the signal (130, 143, 129, 131) once the commands have wound up (at most
/// `recordGrace` more). A second signal kills every group at once
/// and exits. `kill -9` is the watchdog's job (`ProcessGroups`).
enum SignalScope {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
    /// 2 s, or `KMATRIX_STOP_GRACE` seconds (children that need longer to stop cleanly; a
    /// test that must see the second signal's path on a loaded machine).
    static let grace: Duration = {
        let configured = ProcessInfo.processInfo.environment["KMATRIX_STOP_GRACE"].flatMap(Double.init)
        return .milliseconds(Int((configured.map { max(0, $0) } ?? 2) * 1000))
    }()
    static let recordGrace: Duration = .seconds(5)

    private struct State {
        var sources: [any DispatchSourceSignal] = []
        var commands: [UInt64: @Sendable () -> Void] = [:]
        var nextID: UInt64 = 0
        var received: [Int32] = []
    }
    private static let state = Mutex(State())

    /// The first signal received, if any.
    static var received: Int32? { state.withLock { $0.received.first } }

    static func exitCode(for signal: Int32) -> Int32 { 128 + signal }

    /// Installs the handlers, once per process.
    static func install() {
        state.withLock { state in
            guard state.sources.isEmpty else { return }
            for signalNumber in handled {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { receive(signalNumber) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// Runs `body` as a command the handlers cancel on the first signal.
    static func running<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        let (id, cancelNow) = state.withLock { state -> (UInt64, Bool) in
            state.nextID += 1
            state.commands[state.nextID] = { task.cancel() }
            return (state.nextID, !state.received.isEmpty)
        }
        if cancelNow { task.cancel() }
        defer { _ = state.withLock { $0.commands.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Kept for `run`: the command already runs under `running`, so this is a pass-through.
    static func cancellingOnSignals<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await body()
    }

    private static func receive(_ signalNumber: Int32) {
        let (count, commands) = state.withLock { state -> (Int, [@Sendable () -> Void]) in
            state.received.append(signalNumber)
            return (state.received.count, Array(state.commands.values))
        }
        let code = exitCode(for: signalNumber)
        if count > 1 {
            ProcessGroups.killAll()
            FileHandle.standardError.write(Data("kmatrix: killed every child process; exiting\n".utf8))
            exitOnce(code)
        }
        ProcessGroups.markStopping(signalNumber)
        FileHandle.standardError.write(Data("\nkmatrix: \(name(signalNumber)): stopping every child process (again to kill them at once)\n".utf8))
        for cancel in commands { cancel() }
        ProcessGroups.terminateAll()
        // Waits off the handler's queue: a second signal must be handled meanwhile.
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline, ProcessGroups.anyAlive { usleep(20_000) }
            ProcessGroups.killAll()
            // Every child is gone; the commands get a little longer to record what they
            // did (results of an interrupted run), then kmatrix exits regardless.
            let recordDeadline = ContinuousClock.now + recordGrace
            while ContinuousClock.now < recordDeadline, commandsRunning { usleep(20_000) }
            exitOnce(code)
        }
    }

    private static let exiting = Mutex(false)

    /// `exit` runs atexit handlers and must not run twice at once (the second signal's
    /// handler and the first one's waiting thread can both get here).
    private static func exitOnce(_ code: Int32) -> Never {
        if exiting.withLock({ claimed in defer { claimed = true }; return claimed }) {
            while true { pause() }
        }
        exit(code)
    }

    private static var commandsRunning: Bool { state.withLock { !$0.commands.isEmpty } }

    static func name(_ signalNumber: Int32) -> String {
        switch signalNumber {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case SIGQUIT: "SIGQUIT"
        default: "signal \(signalNumber)"
        }
    }
}
