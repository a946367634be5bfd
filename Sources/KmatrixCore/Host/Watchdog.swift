import Foundation
import Synchronization

/// A small `sh` process that outlives kmatrix only to clean up after it. Its stdin is the
/// read end of a pipe whose write end only kmatrix holds (close-on-exec, so no child
/// inherits it); kmatrix writes `+g<pgid>` / `-g<pgid>` (or `p<pid>`) as it registers
/// and unregisters children. When kmatrix dies, however it dies (`kill -9` included),
/// the kernel closes the pipe, the script reads EOF and SIGKILLs whatever is still
/// listed. A parent-death signal would not do: posix_spawn cannot set it, and it would
/// reach direct children only, not make's compilers.
final class Watchdog: Sendable {
    static let shared = Watchdog()

    /// Fixed text, never built from data: tokens are checked by the `case` patterns.
    static let script = """
        trap '' INT TERM HUP QUIT PIPE
        live=' '
        while IFS= read -r line; do
          case $line in
            +[gp][0-9]*) live="$live${line#+} " ;;
            -[gp][0-9]*) gone=${line#-}; rest=' '
              for m in $live; do [ "$m" = "$gone" ] || rest="$rest$m "; done
              live=$rest ;;
          esac
        done
        for m in $live; do
          case $m in
            g*) kill -s KILL -- "-${m#g}" ;;
            p*) kill -s KILL "${m#p}" ;;
          esac
        done 2>/dev/null
        """

    private struct State {
        var writeEnd: Int32 = -1
        var pid: pid_t = 0
        var started = false
    }
    private let state = Mutex(State())

    /// The watchdog's pid once started (tests check it is alive).
    var pid: pid_t { state.withLock { $0.pid } }

    /// Sends one line, starting the watchdog on first use. Best effort: without a
    /// watchdog kmatrix still stops its children on signals, only not after `kill -9`.
    func send(_ line: String) {
        state.withLock { state in
            if !state.started {
                state.started = true
                (state.writeEnd, state.pid) = Self.start()
            }
            guard state.writeEnd >= 0 else { return }
            let bytes = Array((line + "\n").utf8)
            // Lines are far below PIPE_BUF: each write is atomic.
            _ = bytes.withUnsafeBytes { write(state.writeEnd, $0.baseAddress, $0.count) }
        }
    }

    // glibc's GNU extensions, which Swift's Glibc module does not export: pipe2 makes both
    // ends close-on-exec atomically (no child spawned meanwhile inherits the write end).
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let pipe2: Pipe2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    private static func start() -> (Int32, pid_t) {
        // A dead watchdog must not kill kmatrix through SIGPIPE; the write just fails.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [-1, -1]
        guard let pipe2 = Self.pipe2, pipe2(&fds, O_CLOEXEC) == 0 else { return (-1, 0) }
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of kmatrix's (a test's stderr pipe, a console pipe) stays open in it.
        _ = Self.closeFrom?(&actions, 3)
        // Its own session: a terminal's Ctrl-C or hangup must not reach it. 0x80 is
        // glibc's POSIX_SPAWN_SETSID, which Swift's Glibc module does not export.
        posix_spawnattr_setflags(&attributes, Int16(0x80))
        var pid: pid_t = 0
        let argv = ["sh", "-c", script, "kmatrix-watchdog"]
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        let result = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &cArgs, environ)
        close(fds[0])
        guard result == 0 else {
            close(fds[1])
            return (-1, 0)
        }
        return (fds[1], pid)
    }
}
