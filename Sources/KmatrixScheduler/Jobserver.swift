import Foundation
import KmatrixCore
import Synchronization

/// One pool of job slots for every make kmatrix runs, shared through GNU make's jobserver
/// protocol. Make 4.3 (Debian 12) only takes `--jobserver-auth=R,W` file descriptors, and
/// swift-subprocess closes every descriptor above 2 in the child, so the pool is a named
/// FIFO that each make opens as fd 3 through a fixed `sh -c` wrapper.
///
/// Accounting: a make's first job runs on an implicit slot that make never asks for. So
/// the wrapper takes one token from the pool before it starts make and puts it back when
/// make ends; the pool starts with `slots` tokens. Running jobs never exceed `slots`, and
/// a make that has parallel work takes any token that is free. Taking the token in the
/// wrapper, not around the Swift call, keeps cheap steps (a busybox build that is reused)
/// from queueing behind a kernel build for a slot they never use.
///
/// Tokens survive a killed make: a make killed on its deadline never returns its own token
/// nor those its children held. The caller brackets every wrapped run with `started()` and
/// `finished()`; when the last running one finishes, no token can be in use, so the pool
/// is drained and refilled to exactly `slots`.
public final class Jobserver: Sendable {
    public let slots: Int
    public let fifoPath: String
    private let fd: Int32
    private let inFlight = Mutex<Int>(0)

    public init(slots: Int, directory: String) throws(KmatrixError) {
        precondition(slots >= 1)
        self.slots = slots
        fifoPath = "\(directory)/jobserver-\(getpid()).fifo"
        unlink(fifoPath)
        guard mkfifo(fifoPath, 0o600) == 0 else {
            throw .host("cannot create the jobserver FIFO \(fifoPath): \(String(cString: strerror(errno)))")
        }
        // Held open read-write for the whole run, so tokens stay buffered between makes;
        // non-blocking so that draining it never waits.
        fd = open(fifoPath, O_RDWR | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .host("cannot open the jobserver FIFO \(fifoPath): \(String(cString: strerror(errno)))") }
        guard refill() else { throw .host("cannot fill the jobserver FIFO \(fifoPath)") }
    }

    deinit {
        close(fd)
        unlink(fifoPath)
    }

    /// A wrapped command is about to run.
    public func started() {
        inFlight.withLock { $0 += 1 }
    }

    /// A wrapped command ended, however it ended. The last one out restores the pool.
    public func finished() {
        inFlight.withLock { count in
            count = max(0, count - 1)
            if count == 0 { _ = refill() }
        }
    }

    /// Runs `body` (which runs a command from `wrap`) counted as running.
    public func running<T, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
        started()
        defer { finished() }
        return try await body()
    }

    /// Tokens in the pool now (for tests and diagnostics; only exact while nothing runs).
    public var available: Int {
        inFlight.withLock { _ in
            let drained = drain()
            _ = writeTokens(drained)
            return drained
        }
    }

    /// Empties the FIFO and puts exactly `slots` tokens back. Only called while no wrapped
    /// make runs (under the lock that counts them), so no token is legitimately out.
    private func refill() -> Bool {
        _ = drain()
        return writeTokens(slots)
    }

    private func drain() -> Int {
        var buffer = [UInt8](repeating: 0, count: 512)
        var total = 0
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 { total += count; continue }
            if count < 0, errno == EINTR { continue }
            return total
        }
    }

    private func writeTokens(_ count: Int) -> Bool {
        guard count > 0 else { return true }
        let tokens = [UInt8](repeating: UInt8(ascii: "+"), count: count)
        return write(fd, tokens, tokens.count) == tokens.count
    }

    /// The wrapper: open the pool as fd 3, take the implicit slot's token, run make, put
    /// the token back, keep make's exit status. User data only ever arrives as "$@".
    /// It outlives a SIGTERM of its group (the trap runs a no-op, and children still get
    /// the default action): it exits only after make has returned its tokens and died, so
    /// no token comes back after the pool was refilled.
    static let wrapperScript = #"trap : TERM INT HUP; exec 3<>"$KMATRIX_JOBSERVER" || exit 125; dd bs=1 count=1 <&3 >/dev/null 2>&1 || exit 125; "$@"; status=$?; printf + >&3; exit $status"#

    /// Wraps a make command so it joins the pool: make finds `--jobserver-auth=3,3` in
    /// MAKEFLAGS. Any `-jN` is dropped from its command line (make would start a pool of
    /// its own). Run it inside `running { }` (or between `started()` and `finished()`).
    public func wrap(_ command: Command) -> Command {
        let argv = ["/bin/sh", "-c", Self.wrapperScript, "kmatrix-make"]
            + command.argv.filter { !($0.hasPrefix("-j") && $0.dropFirst(2).allSatisfy(\.isNumber)) }
        var environment = command.environment
        environment["KMATRIX_JOBSERVER"] = fifoPath
        environment["MAKEFLAGS"] = " -j --jobserver-auth=3,3"
        environment.updateValue(nil, forKey: "MFLAGS")
        return Command(argv, environment: environment, workingDirectory: command.workingDirectory, cleanEnvironment: command.cleanEnvironment)
    }
}
