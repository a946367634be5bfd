import Dispatch
import Foundation
import Synchronization

/// The QEMU sessions running right now. Each boot runs QEMU in its own session, so a
/// Ctrl-C on kmatrix's terminal does not reach it; if kmatrix then died by the signal, a
/// silent guest would live on. `stopOnInterrupt()` makes SIGINT and SIGTERM end every
/// registered session first (SIGTERM, a short wait, SIGKILL), then exit 130.
public enum LiveMachines {
    private static let groups = Mutex<Set<pid_t>>([])
    private static let handlers = Mutex<[DispatchSourceSignal]>([])
    private static let interruptedFlag = Mutex(false)

    /// A SIGINT or SIGTERM arrived: boots that end now were stopped, not finished.
    public static var interrupted: Bool { interruptedFlag.withLock { $0 } }

    static func insert(_ pid: pid_t) { groups.withLock { _ = $0.insert(pid) } }
    static func remove(_ pid: pid_t) { groups.withLock { _ = $0.remove(pid) } }
    public static var count: Int { groups.withLock { $0.count } }

    /// SIGTERM to every live QEMU session, up to half a second for them to go, then SIGKILL.
    public static func stopAll() {
        let live = groups.withLock { $0 }
        for pid in live { _ = kill(-pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(0.5)
        while Date() < deadline, live.contains(where: { kill(-$0, 0) == 0 }) { usleep(20_000) }
        for pid in live { _ = kill(-pid, SIGKILL) }
    }

    /// Installs, once per process, SIGINT/SIGTERM handling that stops every live machine
    /// and exits 130 (kmatrix's status for an interrupted run).
    public static func stopOnInterrupt() {
        handlers.withLock { handlers in
            guard handlers.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    interruptedFlag.withLock { $0 = true }
                    stopAll()
                    FileHandle.standardError.write(Data("kmatrix: interrupted; QEMU stopped\n".utf8))
                    exit(130)
                }
                source.resume()
                handlers.append(source)
            }
        }
    }
}
