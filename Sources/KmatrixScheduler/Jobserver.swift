import Foundation
import KmatrixCore

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
/// from queueing behind a kernel build for a slot they never use. Boots, which are not
/// makes, take a token with `withSlot`.
public final class Jobserver: Sendable {
    public let slots: Int
    public let fifoPath: String
    private let fd: Int32
    private let waiters = TokenQueue()

    public init(slots: Int, directory: String) throws(KmatrixError) {
        precondition(slots >= 1)
        self.slots = slots
        fifoPath = "\(directory)/jobserver-\(getpid()).fifo"
        unlink(fifoPath)
        guard mkfifo(fifoPath, 0o600) == 0 else {
            throw .host("cannot create the jobserver FIFO \(fifoPath): \(String(cString: strerror(errno)))")
        }
        // Held open read-write for the whole run, so tokens stay buffered between makes.
        fd = open(fifoPath, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .host("cannot open the jobserver FIFO \(fifoPath): \(String(cString: strerror(errno)))") }
        let tokens = [UInt8](repeating: UInt8(ascii: "+"), count: slots)
        guard write(fd, tokens, tokens.count) == tokens.count else { throw .host("cannot fill the jobserver FIFO") }
    }

    deinit {
        close(fd)
        unlink(fifoPath)
    }

    /// Waits for a free slot. Lower `priority` values are served first.
    public func acquire(priority: Int) async {
        await waiters.wait(priority: priority, read: { [fd] in
            var byte: UInt8 = 0
            while read(fd, &byte, 1) != 1 {
                if errno != EINTR { usleep(100_000) }
            }
        })
    }

    public func release() {
        var byte = UInt8(ascii: "+")
        _ = write(fd, &byte, 1)
    }

    /// Runs `body` holding one slot.
    public func withSlot<T: Sendable>(priority: Int, _ body: () async throws -> T) async rethrows -> T {
        await acquire(priority: priority)
        defer { release() }
        return try await body()
    }

    /// The wrapper: open the pool as fd 3, take the implicit slot's token, run make, put
    /// the token back, keep make's exit status. User data only ever arrives as "$@".
    static let wrapperScript = #"exec 3<>"$KMATRIX_JOBSERVER" || exit 125; dd bs=1 count=1 <&3 >/dev/null 2>&1 || exit 125; "$@"; status=$?; printf + >&3; exit $status"#

    /// Wraps a make command so it joins the pool: make finds `--jobserver-auth=3,3` in
    /// MAKEFLAGS. Any `-jN` is dropped from its command line (make would start a pool of
    /// its own).
    public func wrap(_ command: Command) -> Command {
        let argv = ["/bin/sh", "-c", Self.wrapperScript, "kmatrix-make"]
            + command.argv.filter { !($0.hasPrefix("-j") && $0.dropFirst(2).allSatisfy(\.isNumber)) }
        var environment = command.environment
        environment["KMATRIX_JOBSERVER"] = fifoPath
        environment["MAKEFLAGS"] = " -j --jobserver-auth=3,3"
        environment.updateValue(nil, forKey: "MFLAGS")
        return Command(argv, environment: environment, workingDirectory: command.workingDirectory)
    }
}

/// Hands tokens read from the FIFO to waiters in priority order; one blocking reader
/// at a time, on its own thread, so the cooperative pool never blocks.
private actor TokenQueue {
    private var queue: [(priority: Int, serial: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private var serial = 0
    private var reading = false

    func wait(priority: Int, read: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { continuation in
            serial += 1
            queue.append((priority, serial, continuation))
            queue.sort { ($0.priority, $0.serial) < ($1.priority, $1.serial) }
            pump(read)
        }
    }

    private func pump(_ read: @escaping @Sendable () -> Void) {
        guard !reading, !queue.isEmpty else { return }
        reading = true
        Thread.detachNewThread { [self] in
            read()
            Task { await self.handOut(read) }
        }
    }

    private func handOut(_ read: @escaping @Sendable () -> Void) {
        reading = false
        let first = queue.removeFirst()
        first.continuation.resume()
        pump(read)
    }
}
