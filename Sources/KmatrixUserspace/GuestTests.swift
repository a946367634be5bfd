import Foundation
import KmatrixCore

/// One test script as the rootfs carries it: `/kmatrix/tests/<suite>/<name>`.
public struct GuestScript: Sendable, Equatable {
    public var suite: String
    public var name: String
    /// The file on the host.
    public var source: String
    public var timeoutSeconds: Int

    public init(suite: String, name: String, source: String, timeoutSeconds: Int) {
        self.suite = suite
        self.name = name
        self.source = source
        self.timeoutSeconds = timeoutSeconds
    }

    /// A cell's scripts, in the order its suites name them.
    public static func of(_ cell: Cell) -> [GuestScript] {
        cell.tests.flatMap { suite in
            zip(suite.scriptNames, suite.scriptPaths).map {
                GuestScript(suite: suite.name, name: $0.0, source: $0.1, timeoutSeconds: suite.suite.timeoutSeconds)
            }
        }
    }

    var guestPath: String { "/\(GuestTestProtocol.guestDirectory)/tests/\(suite)/\(name)" }
}

extension Rootfs {
    static var runTestsPath: String { "/\(GuestTestProtocol.guestDirectory)/run-tests" }

    /// The scripts (executable, whatever their mode on the host) and the runner init calls.
    static func addGuestTests(_ scripts: [GuestScript], to tree: inout RootfsTree) {
        guard !scripts.isEmpty else { return }
        let base = GuestTestProtocol.guestDirectory
        tree.directory(base)
        tree.directory("\(base)/tests")
        for suite in Set(scripts.map(\.suite)).sorted() { tree.directory("\(base)/tests/\(suite)") }
        for script in scripts {
            tree.add(RootfsEntry(String(script.guestPath.dropFirst()), .file(source: script.source), mode: 0o755))
        }
        tree.file(String(runTestsPath.dropFirst()), runTests(scripts), mode: 0o755)
    }

    /// The unattended init with the tests run between the marker and the reboot.
    static var unattendedInitWithTests: String {
        unattendedInit.replacingOccurrences(of: "sync\nreboot -f\n", with: "\(runTestsPath)\nsync\nreboot -f\n")
    }

    /// Runs each script within its limit, its output kept in a file and sent after it ends,
    /// prefixed line by line (`GuestTestProtocol`). The limit is kept by a watcher that reads
    /// /proc/uptime rather than by busybox `timeout`, which counts `sleep 1`s: on the tiny
    /// vexpress-a9 kernel under TCG `sleep 2` returns after 0.3 s of uptime, and `timeout`
    /// killed every script at once. Suite and script names are checked names (letters,
    /// digits, `_-.`): safe in the shell text.
    static func runTests(_ scripts: [GuestScript]) -> String {
        let p = GuestTestProtocol.self
        var text = """
            #!/bin/sh
            # kmatrix: runs the guest tests after the boot marker and reports each one on the console.
            export PATH=/bin:/sbin:/usr/bin:/usr/sbin
            mount -t tmpfs tmpfs /tmp 2>/dev/null
            # The nonce: the boot's random id. Not /dev/urandom, whose first read before the
            # kernel's random pool is ready gathers jitter entropy for seconds under TCG.
            { read -r nonce < /proc/sys/kernel/random/boot_id; } 2>/dev/null || nonce="$$-$RANDOM-$RANDOM-$RANDOM"
            out=/tmp/kmatrix-test.out
            # Centiseconds of uptime, read by the shell itself (every fork and exec costs a lot
            # under TCG, so the runner keeps to builtins); `1${frac} - 100` keeps `08` from reading as octal.
            centiseconds() { read -r up idle < /proc/uptime; echo $(( ${up%.*} * 100 + 1${up#*.} - 100 )); }
            echo "\(p.runBegin) $nonce count=\(scripts.count)"
            run() {
                echo "\(p.testBegin) $nonce $1 $2"
                start=$(centiseconds)
                cd /tmp
                "$4" > "$out" 2>&1 < /dev/null &
                pid=$!
                (
                    deadline=$(( start + ($3 + 1) * 100 ))
                    while kill -0 "$pid" 2>/dev/null; do
                        if [ "$(centiseconds)" -ge "$deadline" ]; then kill -KILL "$pid"; break; fi
                        sleep 1
                    done
                ) &
                watcher=$!
                wait "$pid"
                status=$?
                # Not waited for: a shell finishes its foreground `sleep 1` before it dies.
                kill "$watcher" 2>/dev/null
                cd /
                took=$(( $(centiseconds) - start ))
                lines=0
                while IFS= read -r line || [ -n "$line" ]; do
                    echo "\(p.output) $nonce $line"
                    lines=$((lines + 1))
                done < "$out"
                echo "\(p.testEnd) $nonce $1 $2 status=$status lines=$lines seconds=$((took / 100)).$((took % 100 / 10))$((took % 10)) limit=$3"
                rm -f "$out"
            }

            """
        for script in scripts {
            text += "run \(script.suite) \(script.name) \(script.timeoutSeconds) \(script.guestPath)\n"
        }
        text += "echo \"\(p.runEnd) $nonce\"\n"
        return text
    }
}
