import Foundation
import Synchronization

/// Every process group kmatrix has started and that is still running (make, busybox's
/// make, boots, the KVM probe, `shell`'s QEMU). `ProcessRunner` registers each child at
/// spawn and unregisters it when it has ended, so a signal handler can stop them all and
/// a watchdog process can kill them when kmatrix itself dies, even by `kill -9`.
public enum ProcessGroups {
    /// What to signal: a whole group (the child leads its own session, pgid == pid) or
    /// one process that shares kmatrix's group (QEMU attached to the terminal).
    public enum Member: Hashable, Sendable {
        case group(pid_t)
        case process(pid_t)

        /// The `kill(2)` target: negative for a group.
        var killTarget: pid_t {
            switch self {
            case .group(let pid): -pid
            case .process(let pid): pid
            }
        }

        /// The watchdog's token for it (`g123`, `p123`).
        var token: String {
            switch self {
            case .group(let pid): "g\(pid)"
            case .process(let pid): "p\(pid)"
            }
        }
    }

    private static let members = Mutex<Set<Member>>([])
    private static let stoppingSignal = Mutex<Int32?>(nil)

    /// The signal that is stopping kmatrix, once one arrived: work that ends now was
    /// stopped, not finished.
    public static var stoppedBy: Int32? { stoppingSignal.withLock { $0 } }
    public static var stopping: Bool { stoppedBy != nil }
    public static func markStopping(_ signal: Int32) { stoppingSignal.withLock { if $0 == nil { $0 = signal } } }

    public static var count: Int { members.withLock { $0.count } }
    public static var live: Set<Member> { members.withLock { $0 } }

    /// Called right after spawn. A registration that arrives while kmatrix is already
    /// stopping is killed at once: the signal handler has already swept the registry.
    public static func register(_ member: Member) {
        let stopping = members.withLock { set -> Bool in
            set.insert(member)
            Watchdog.shared.send("+\(member.token)")
            return stoppedBy != nil
        }
        if stopping { _ = kill(member.killTarget, SIGKILL) }
    }

    /// Called once the child has been reaped: what is left of its group is killed first
    /// (a leader that exited can leave background children behind).
    public static func unregister(_ member: Member) {
        if case .group = member { _ = kill(member.killTarget, SIGKILL) }
        members.withLock { set in
            set.remove(member)
            Watchdog.shared.send("-\(member.token)")
        }
    }

    /// SIGTERM to every registered member.
    public static func terminateAll() {
        for member in live { _ = kill(member.killTarget, SIGTERM) }
    }

    /// SIGKILL to every registered member.
    public static func killAll() {
        for member in live { _ = kill(member.killTarget, SIGKILL) }
    }

    /// Whether any registered member still has a process.
    public static var anyAlive: Bool { live.contains { kill($0.killTarget, 0) == 0 } }

    /// SIGTERM to every member, up to `grace` for them to go, then SIGKILL.
    public static func stopAll(grace: Duration = .seconds(2)) {
        terminateAll()
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, anyAlive { usleep(20_000) }
        killAll()
    }
}
