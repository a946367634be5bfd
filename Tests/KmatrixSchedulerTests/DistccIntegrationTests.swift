import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

/// `--distcc HOSTS` with real distcc daemons: two `distccd`, each in a network namespace of
/// its own behind a veth pair on a private test subnet, compile one tiny kernel and busybox.
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
    static let subnet = "10.213.0"

    static var root: Needs.Item { .init("root (network namespaces)") { geteuid() == 0 } }

    @Test(.needs(tools: ["ip", "distcc", "distccd", "x86_64-linux-gnu-gcc"], root, .kmatrixBinary, .unpackedKernel, .builtKernel(cellID)),
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
        let network = TestNetwork(names: ["kmxdcc2", "kmxdcc3"], subnet: Self.subnet)
        defer { network.tearDown() }
        // The daemons and their workers, found by the log folder on their command lines.
        // SIGKILL: they inherit the test process's blocked SIGTERM.
        var daemons: [Process] = []
        defer {
            for pid in processesMentioning(logs) { kill(pid_t(pid), SIGKILL) }
            for daemon in daemons { daemon.waitUntilExit() }
        }
        try network.setUp()
        var logFiles: [String] = []
        for (index, namespace) in network.names.enumerated() {
            let log = "\(logs)/\(namespace).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o666])
            let daemon = Process()
            daemon.executableURL = URL(fileURLWithPath: try #require(ProcessRunner.which("ip")))
            // TMPDIR=/tmp: distccd writes each job's files under $TMPDIR after dropping root for
            // its own user, and the test's TMPDIR (a CI's scratch folder) is root's alone; there
            // it reset every connection (two cold CI runs: no remote compile, then none allowed).
            daemon.arguments = ["netns", "exec", namespace, "env", "PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=/tmp",
                                try #require(ProcessRunner.which("distccd")), "--daemon", "--no-detach",
                                "--allow", "\(Self.subnet).0/24", "--listen", network.address(index), "--log-file", log, "--verbose"]
            // Its own output to nowhere (its log file has it): a daemon, or a worker it forks, must
            // not hold the test run's standard output open past its end.
            daemon.standardOutput = FileHandle.nullDevice
            daemon.standardError = FileHandle.nullDevice
            daemon.standardInput = FileHandle.nullDevice
            try daemon.run()
            daemons.append(daemon)
            logFiles.append(log)
        }
        try await waitUntilListening(network.names.indices.map(network.address))

        let hosts = network.names.indices.map { "\(network.address($0))/2" }.joined(separator: " ")
        var started = ContinuousClock.now
        // No fallback: a compile distcc cannot send fails the build, with distcc's reason in
        // its client log, instead of running here unseen (a cold CI run once counted no remote
        // compile at all and said nothing of why).
        let clientLog = "\(distccDir)/client.log"
        let build = try await TestProcess.run(kmatrix, common + ["--jobs", "4", "--distcc", hosts],
                                              environment: ["DISTCC_DIR": distccDir, "DISTCC_FALLBACK": "0", "DISTCC_LOG": clientLog],
                                              logPrefix: "kmatrix-distcc")
        let distccTime = ContinuousClock.now - started
        let clientTail = ((try? String(contentsOfFile: clientLog, encoding: .utf8)) ?? "(no client log)").split(separator: "\n").suffix(20).joined(separator: "\n")
        try #require(build.status == 0, "kmatrix build --distcc: \(build.output)\ndistcc client log, last lines:\n\(clientTail)")

        let counts = try compileCounts(logFiles)
        print("distcc: remote compiles per host \(zip(network.names.indices.map(network.address), counts).map { "\($0)=\($1)" }.joined(separator: " ")), "
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
                                               environment: ["DISTCC_DIR": distccDir, "DISTCC_FALLBACK": "0", "DISTCC_LOG": clientLog],
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

    /// Until each daemon accepts connections on port 3632 (about 10 s). Each attempt has a
    /// second: where the namespace's network drops packets instead of refusing them, a bare
    /// connect waits for TCP's SYN retries (over 2 minutes) on every one of the 100 attempts.
    func waitUntilListening(_ addresses: [String]) async throws {
        for address in addresses {
            var ready = false
            for _ in 0..<100 where !ready {
                ready = (try? TestNetwork.run(["timeout", "1", "/bin/bash", "-c", "exec 3<>/dev/tcp/\(address)/3632"])) != nil
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "distccd on \(address) does not listen")
        }
    }
}

/// Network namespaces joined to this host by veth pairs: the host is `<subnet>.1` on every
/// pair (a point-to-point address per peer), namespace `i` is `<subnet>.(i+2)`.
struct TestNetwork {
    let names: [String]
    let subnet: String

    func address(_ index: Int) -> String { "\(subnet).\(index + 2)" }
    func hostSide(_ index: Int) -> String { "\(names[index])h" }

    func setUp() throws {
        tearDown()  // what an earlier, killed run left
        for (index, name) in names.enumerated() {
            let inner = "\(name)n"
            try Self.run(["ip", "netns", "add", name])
            try Self.run(["ip", "link", "add", hostSide(index), "type", "veth", "peer", "name", inner])
            try Self.run(["ip", "link", "set", inner, "netns", name])
            try Self.run(["ip", "addr", "add", "\(subnet).1", "peer", address(index), "dev", hostSide(index)])
            try Self.run(["ip", "link", "set", hostSide(index), "up"])
            try Self.run(["ip", "netns", "exec", name, "ip", "addr", "add", "\(address(index))/24", "dev", inner])
            try Self.run(["ip", "netns", "exec", name, "ip", "link", "set", inner, "up"])
            try Self.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
        }
    }

    /// Deleting a namespace deletes its end of the pair, and with it the host's end.
    func tearDown() {
        for (index, name) in names.enumerated() {
            _ = try? Self.run(["ip", "netns", "del", name])
            _ = try? Self.run(["ip", "link", "del", hostSide(index)])
        }
    }

    @discardableResult
    static func run(_ argv: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : (ProcessRunner.which(argv[0]) ?? argv[0]))
        process.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()  // ip returns at once
        guard process.terminationStatus == 0 else { throw CommandFailed(description: "\(argv.joined(separator: " ")): \(output)") }
        return output
    }
}

struct CommandFailed: Error, CustomStringConvertible { var description: String }
