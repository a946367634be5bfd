import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

/// `--distcc HOSTS` with real distcc daemons: two `distccd`, each listening on a loopback
/// address of its own (127.0.0.2 and 127.0.0.3, an unusual port), compile one tiny kernel and
/// busybox. (They ran in network namespaces behind veth pairs until session 6: that needs root
/// and a path for packets the host may not give, and where packets are dropped every wait on
/// a daemon lasts minutes; the two CI runs that had it ended at their limit, saying nothing.)
/// A private cache with no build folder builds the cell with `--distcc`: every object is
/// compiled through the daemons, and linked here. The daemons' logs show the compiles ran
/// there; the image has the key of the shared test cache's local build of the same cell (the
/// hosts are not part of it) and its bytes (kmatrix pins KBUILD_BUILD_TIMESTAMP/USER/HOST/
/// VERSION, and the build folder's path does not reach the image: a local build in this
/// test's own folders gave the shared cache's bytes in every cold CI run until that build was
/// dropped for the ~6 minutes it cost). Then `rootfs` builds busybox through them, which must
/// give the key and the bytes of the shared cache's local build.
@Suite("distcc, end to end", .serialized)
struct DistccIntegrationTests {
    static let cellID = "x86_64-pc/gcc/tiny/initramfs"
    static let addresses = ["127.0.0.2", "127.0.0.3"]
    static let port = 43632

    @Test(.needs(tools: ["distcc", "distccd", "x86_64-linux-gnu-gcc"], .kmatrixBinary, .unpackedKernel, .builtKernel(cellID)),
          .timeLimit(.minutes(30)))
    func tinyKernelBuiltOnTwoDistccHostsIsByteIdenticalToTheLocalBuild() async throws {
        let testCache = try TestCache.private("distcc")
        defer { testCache.remove() }
        try testCache.linkSources()
        let kmatrix = try #require(TestCache.kmatrixBinary)
        let common = ["build", "--project", repositoryRoot, "--cache", testCache.root, "--plain", "--no-ccache", "--cell", Self.cellID]
        // distcc keeps its locks and host states there; it does not make the folder itself.
        let distccDir = "\(testCache.root)/distcc"
        try FileManager.default.createDirectory(atPath: distccDir, withIntermediateDirectories: true)

        // distccd drops root for its own user: its logs live in a folder it can write.
        let logs = "/tmp/kmatrix-distcc-logs-\(getpid())"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(atPath: logs) }
        // The daemons and their workers, found by the log folder on their command lines.
        // SIGKILL: they inherit the test process's blocked SIGTERM. Again until none is left: a
        // daemon forks workers until it dies, and one forked after the first look survives it
        // holding the daemon's end of Foundation's exit-notification socket, so the daemon
        // stays an unreaped zombie and `waitUntilExit()` never returns (a cold run here hung
        // so: two zombie daemons, three orphaned workers, the test run held until its limit).
        var daemons: [Process] = []
        defer {
            let deadline = ContinuousClock.now + .seconds(20)
            var left = processesMentioning(logs)
            while !left.isEmpty, ContinuousClock.now < deadline {
                for pid in left { kill(pid_t(pid), SIGKILL) }
                usleep(100_000)
                left = processesMentioning(logs)
            }
            for daemon in daemons {
                while daemon.isRunning, ContinuousClock.now < deadline { usleep(100_000) }
            }
            #expect(left.isEmpty && daemons.allSatisfy { !$0.isRunning },
                    "distcc daemons left after 20 s: \(left.map { "\($0) \(commandLine(of: $0))" })")
        }
        var logFiles: [String] = []
        for (index, address) in Self.addresses.enumerated() {
            let log = "\(logs)/distccd-\(index).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o666])
            let daemon = Process()
            daemon.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            // TMPDIR=/tmp: distccd writes each job's files under $TMPDIR after dropping root for
            // its own user, and the test's TMPDIR (a CI's scratch folder) may be root's alone;
            // there it reset every connection (a cold run: no remote compile, then none allowed).
            daemon.arguments = ["PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=/tmp",
                                try #require(ProcessRunner.which("distccd")), "--daemon", "--no-detach",
                                "--allow", "127.0.0.0/8", "--listen", address, "--port", "\(Self.port)",
                                "--log-file", log, "--verbose"]
            // Its own output to nowhere (its log file has it): a daemon, or a worker it forks, must
            // not hold the test run's standard output open past its end.
            daemon.standardOutput = FileHandle.nullDevice
            daemon.standardError = FileHandle.nullDevice
            daemon.standardInput = FileHandle.nullDevice
            try daemon.run()
            daemons.append(daemon)
            logFiles.append(log)
        }
        try await waitUntilListening(Self.addresses)

        let hosts = Self.addresses.map { "\($0):\(Self.port)/2" }.joined(separator: " ")
        var started = ContinuousClock.now
        // No fallback: a compile distcc cannot send fails the build, with distcc's reason in
        // its client log, instead of running here unseen (a cold CI run once counted no remote
        // compile at all and said nothing of why).
        let clientLog = "\(distccDir)/client.log"
        // A compile whose daemon stops answering fails after 2 minutes (distcc's default: 5).
        let clientEnvironment = ["DISTCC_DIR": distccDir, "DISTCC_FALLBACK": "0", "DISTCC_LOG": clientLog, "DISTCC_IO_TIMEOUT": "120"]
        let build = try await TestProcess.run(kmatrix, common + ["--jobs", "4", "--distcc", hosts],
                                              environment: clientEnvironment,
                                              logPrefix: "kmatrix-distcc")
        let distccTime = ContinuousClock.now - started
        let clientTail = ((try? String(contentsOfFile: clientLog, encoding: .utf8)) ?? "(no client log)").split(separator: "\n").suffix(20).joined(separator: "\n")
        try #require(build.status == 0, "kmatrix build --distcc: \(build.output)\ndistcc client log, last lines:\n\(clientTail)")

        let counts = try compileCounts(logFiles)
        print("distcc: remote compiles per host \(zip(Self.addresses, counts).map { "\($0)=\($1)" }.joined(separator: " ")), "
              + "total \(counts.reduce(0, +)); distcc build \(distccTime)")
        #expect(counts.reduce(0, +) > 0, "no compile reached a distcc daemon; distcc client log, last lines:\n\(clientTail)")

        // The shared cache's local build has the same key (the hosts are not part of it) and bytes.
        let key = try onlyKernelEntry(testCache)
        let remoteSum = try #require(sha256("\(testCache.root)/cache/kernel.build/\(key)/bzImage"), "no image from the distcc build")
        let localSum = try #require(sha256("\(TestCache.shared.root)/cache/kernel.build/\(key)/bzImage"),
                                    "the shared cache has no kernel.build entry with the distcc build's key \(key)")
        print("distcc: bzImage sha256 via distcc \(remoteSum), local \(localSum) in the shared cache (another build folder; key \(key))")
        #expect(remoteSum == localSum)

        // Busybox through the same daemons: `rootfs` builds it (this cache has none) with
        // `CC="distcc <cross>gcc"`; its key is the one the shared cache's local build has.
        let before = try compileCounts(logFiles).reduce(0, +)
        started = ContinuousClock.now
        let rootfs = try await TestProcess.run(kmatrix, ["rootfs"] + common.dropFirst() + ["--jobs", "4", "--distcc", hosts],
                                               environment: clientEnvironment,
                                               logPrefix: "kmatrix-distcc-busybox")
        let busyboxTime = ContinuousClock.now - started
        try #require(rootfs.status == 0, "kmatrix rootfs --distcc: \(rootfs.output)")
        let busyboxCompiles = try compileCounts(logFiles).reduce(0, +) - before
        let busyboxKeys = try FileManager.default.contentsOfDirectory(atPath: "\(testCache.root)/cache/busybox.build").filter { !$0.hasPrefix(".") }
        let busyboxKey = try #require(busyboxKeys.count == 1 ? busyboxKeys.first : nil, "busybox.build entries: \(busyboxKeys)")
        let shared = "\(TestCache.shared.root)/cache/busybox.build/\(busyboxKey)"
        print("distcc: busybox \(busyboxCompiles) remote compiles in \(busyboxTime), key \(busyboxKey); "
              + "binary sha256 \(sha256("\(testCache.root)/cache/busybox.build/\(busyboxKey)/install/bin/busybox") ?? "none") here, "
              + "\(sha256("\(shared)/install/bin/busybox") ?? "none") in the shared cache (another build folder)")
        #expect(busyboxCompiles > 0, "no busybox compile reached a distcc daemon")
        #expect(FileManager.default.fileExists(atPath: shared), "the shared cache has no busybox entry with the distcc build's key \(busyboxKey)")
        #expect(sha256("\(testCache.root)/cache/busybox.build/\(busyboxKey)/install/bin/busybox") == sha256("\(shared)/install/bin/busybox"),
                "busybox through distcc differs from the shared cache's local build")
    }

    /// Each daemon's finished compiles so far (its log's `COMPILE_OK` lines).
    func compileCounts(_ logFiles: [String]) throws -> [Int] {
        try logFiles.map { try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n").filter { $0.contains("COMPILE_OK") }.count }
    }

    func onlyKernelEntry(_ cache: TestCache) throws -> String {
        let entries = try FileManager.default.contentsOfDirectory(atPath: "\(cache.root)/cache/kernel.build").filter { !$0.hasPrefix(".") }
        return try #require(entries.count == 1 ? entries.first : nil, "kernel.build entries: \(entries)")
    }

    func sha256(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { SHA256.hex($0) }
    }

    /// Until each daemon accepts connections (about 10 s). Each attempt has a second: where
    /// packets are dropped instead of refused, a bare connect waits out TCP's SYN retries
    /// (over 2 minutes), and there are 100 attempts.
    func waitUntilListening(_ addresses: [String]) async throws {
        for address in addresses {
            var ready = false
            for _ in 0..<100 where !ready {
                let probe = try await TestProcess.run("/usr/bin/timeout", ["1", "/bin/bash", "-c", "exec 3<>/dev/tcp/\(address)/\(Self.port)"],
                                                      logPrefix: "kmatrix-distcc-probe")
                ready = probe.status == 0
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "distccd on \(address) does not listen")
        }
    }
}
