import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// The kmatrix binary signalled (or killed) while its children run: every process of
/// theirs must be gone within a bounded wait, and the exit status must name the signal.
/// The long child is a stand-in QEMU (a `sh` script named in a scratch target) whose
/// process tree is `sh -c 'sleep 300; :' & … & wait`, spawned by `kmatrix boot` through
/// ProcessRunner like any QEMU; real QEMU and `doctor`'s KVM probe are covered too.
enum TeardownFixtures {
    /// The kmatrix executable beside the test bundle (`swift build --build-tests` builds both).
    static let binary: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kmatrix").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()
    /// Found through the workspace, so KMATRIX_CACHE moves it.
    static var probeKernel: String { "\(Workspace.defaultRoot())/probe/vmlinuz" }
    static var realQemu: Bool {
        BootFixtures.needs.missing.isEmpty && FileManager.default.fileExists(atPath: probeKernel)
    }
    /// A scratch project whose `target` runs `script` as its QEMU (`<root>/fake-qemu`);
    /// `flag` creates `<fake-qemu>.<flag>` for the script to test. Returns the project and script.
    static func standIn(_ script: String, target: String, replacing binary: String, flag: String? = nil) throws -> (ScratchProject, String) {
        let project = try ScratchProject()
        let qemu = "\(project.root)/fake-qemu"
        try script.write(toFile: qemu, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: qemu)
        if let flag { FileManager.default.createFile(atPath: "\(qemu).\(flag)", contents: Data()) }
        try project.edit("Targets/\(target).json", replacing: "\"binary\": \"\(binary)\"", with: "\"binary\": \"\(qemu)\"")
        return (project, qemu)
    }

    /// The workspace's unpacked sources, which a test's private cache links to (make with
    /// `O=` only reads them).
    static var unpackedSources: String? {
        let src = "\(Workspace.defaultRoot())/src"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: src)) ?? []
        let unpacked = names.contains { $0.hasPrefix("linux-") && FileManager.default.fileExists(atPath: "\(src)/\($0)/.kmatrix-unpacked") }
        return unpacked && ProcessRunner.which("make") != nil ? src : nil
    }
}

@Suite("Nothing outlives kmatrix", .serialized, .needs(.kmatrixBinary))
struct TeardownTests {
    static var binary: String? { TeardownFixtures.binary }
    static var probeKernel: String { TeardownFixtures.probeKernel }

    /// A QEMU stand-in: answers `--version`, prints a line, then waits on two children
    /// whose command lines carry its own (private) path. With `IGNORE_TERM`, SIGTERM
    /// reaches nobody, so only SIGKILL ends the tree.
    static let fakeQemu = """
        #!/bin/sh
        if [ "$1" = --version ]; then echo "QEMU emulator version 0.0 (stand-in)"; exit 0; fi
        if [ -e "$0.ignore-term" ]; then trap '' TERM; fi
        echo "stand-in QEMU: children starting"
        sh -c 'sleep 300; :' "$0-child" &
        sh -c 'sleep 300; :' "$0-child" &
        wait
        """

    struct Session {
        var folder: String
        var process: Process
        var stderrPath: String
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    }

    /// A scratch project whose x86_64-pc target runs the stand-in, and dummy boot files.
    func standInBoot(ignoreTerm: Bool = false, environment: [String: String] = [:]) throws -> Session {
        let (project, _) = try TeardownFixtures.standIn(Self.fakeQemu, target: "x86_64-pc", replacing: "qemu-system-x86_64",
                                                        flag: ignoreTerm ? "ignore-term" : nil)
        let folder = project.root
        for file in ["kernel", "initrd"] { FileManager.default.createFile(atPath: "\(folder)/\(file)", contents: Data("x".utf8)) }
        return try launch(["boot", "--project", folder, "--cache", "\(folder)/cache", "--target", "x86_64-pc",
                           "--kernel", "\(folder)/kernel", "--initrd", "\(folder)/initrd", "--accel", "tcg",
                           "--timeout", "600", "--silence", "600", "--idle", "0"], folder: folder, environment: environment)
    }

    func launch(_ arguments: [String], folder: String, environment: [String: String] = [:]) throws -> Session {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let stderrPath = "\(folder)/kmatrix.stderr"
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Session(folder: folder, process: process, stderrPath: stderrPath)
    }

    /// Waits until `count` children of kmatrix (kmatrix itself excluded: its own command
    /// line names the folder too) mention the session's folder; returns their groups.
    func running(_ session: Session, atLeast count: Int) async throws -> Set<pid_t> {
        let kmatrix = session.process.processIdentifier
        func children() -> [ProcessEntry] { ProcessTable.left(groups: [], marker: session.folder).filter { $0.pid != kmatrix } }
        let seen = await ProcessTable.waitUntil(.seconds(60)) { children().count >= count }
        try #require(seen != nil, "the children never started; kmatrix said: \(session.stderr)")
        return Set(children().map(\.group))
    }

    /// Waits for kmatrix to exit and every process of `groups` (or naming the folder) to go;
    /// returns what kmatrix wrote on stderr (the folder is removed).
    @discardableResult
    func expectAllGone(_ session: Session, groups: Set<pid_t>, status: Int32?, label: String) async throws -> String {
        let start = ContinuousClock.now
        let exited = await ProcessTable.waitUntil { !session.process.isRunning }
        let gone = await ProcessTable.waitUntil { ProcessTable.left(groups: groups, marker: session.folder).isEmpty }
        let left = ProcessTable.left(groups: groups, marker: session.folder)
        print("\(label): kmatrix exited after \(exited.map { "\($0)" } ?? "-") with status \(session.process.isRunning ? "-" : "\(session.process.terminationStatus)"); children gone after \(gone.map { "\($0)" } ?? "never") (bound 10 s, from \(ContinuousClock.now - start) ago)")
        for entry in left { _ = kill(entry.pid, SIGKILL) }
        #expect(exited != nil, "\(label): kmatrix still runs")
        #expect(left.isEmpty, "\(label): left behind: \(left.map { "\($0.pid) pgid \($0.group) \($0.commandLine)" })")
        if let status {
            #expect(session.process.terminationReason == .exit && session.process.terminationStatus == status,
                    "\(label): status \(session.process.terminationStatus), wanted \(status); stderr: \(session.stderr)")
        }
        let stderr = session.stderr
        try? FileManager.default.removeItem(atPath: session.folder)
        return stderr
    }

    @Test("SIGINT, SIGTERM, SIGHUP and SIGQUIT to `boot`: every group gone, 128 + the signal",
          arguments: zip([SIGINT, SIGTERM, SIGHUP, SIGQUIT], [Int32(130), 143, 129, 131]))
    func signalToBoot(signal: Int32, status: Int32) async throws {
        let session = try standInBoot()
        // The stand-in, its two `sh -c` children (their `sleep`s share the stand-in's group).
        let groups = try await running(session, atLeast: 3)
        kill(session.process.processIdentifier, signal)
        try await expectAllGone(session, groups: groups, status: status, label: "signal \(signal) to boot")
    }

    @Test("A second SIGINT kills children that ignore SIGTERM at once")
    func secondInterrupt() async throws {
        // A minute's grace: on a loaded machine (a cold CI run's test phase) the default 2 s
        // passed before this test saw the first signal's message, SIGKILL ended the stand-ins,
        // and the second signal found nothing left to kill.
        let session = try standInBoot(ignoreTerm: true, environment: ["KMATRIX_STOP_GRACE": "60"])
        let groups = try await running(session, atLeast: 3)
        kill(session.process.processIdentifier, SIGINT)
        // The first signal's SIGTERM reached nobody; the stand-in tree is still there.
        _ = await ProcessTable.waitUntil(.seconds(5)) { session.stderr.contains("stopping every child process") }
        #expect(!ProcessTable.left(groups: groups, marker: session.folder).isEmpty)
        kill(session.process.processIdentifier, SIGINT)
        let stderr = try await expectAllGone(session, groups: groups, status: 130, label: "second SIGINT")
        #expect(stderr.contains("killed every child process"), "the second signal's path did not run: \(stderr)")
    }

    @Test("kill -9 of kmatrix: the watchdog kills what it left")
    func killNine() async throws {
        let session = try standInBoot()
        let groups = try await running(session, atLeast: 3)
        let pid = session.process.processIdentifier
        let watchdog = ProcessTable.all().first { $0.parent == pid && $0.commandLine.hasSuffix("kmatrix-watchdog ") }
        #expect(watchdog != nil, "no watchdog beside kmatrix")
        kill(pid, SIGKILL)
        try await expectAllGone(session, groups: groups, status: nil, label: "kill -9")
        #expect(session.process.terminationReason == .uncaughtSignal)
        if let watchdog {
            let ended = await ProcessTable.waitUntil { kill(watchdog.pid, 0) != 0 || ProcessTable.all().first { $0.pid == watchdog.pid } == nil }
            #expect(ended != nil, "the watchdog outlived its work")
        }
    }

    @Test("SIGINT to `boot` of a real hanging guest: QEMU gone, status 130",
          BootFixtures.needs)
    func interruptRealBoot() async throws {
        let initrd = try await BootFixtures.initramfs(BootFixtures.hangInit)
        let folder = (initrd as NSString).deletingLastPathComponent
        let session = try launch(["boot", "--project", repositoryRoot, "--cache", "\(folder)/cache", "--target", "x86_64-pc",
                                  "--kernel", Self.probeKernel, "--initrd", initrd, "--accel", "tcg",
                                  "--timeout", "600", "--silence", "600", "--idle", "0"], folder: folder)
        let groups = try await running(session, atLeast: 1)
        // Let the guest get going, so QEMU is busy when the signal comes.
        _ = await ProcessTable.waitUntil(.seconds(30)) {
            let log = FileManager.default.enumerator(atPath: "\(folder)/cache/runs")?.compactMap { $0 as? String }.first { $0.hasSuffix("boot.log") }
            return log.flatMap { try? String(contentsOfFile: "\(folder)/cache/runs/\($0)", encoding: .utf8) }?.contains("hanging now") ?? false
        }
        kill(session.process.processIdentifier, SIGINT)
        try await expectAllGone(session, groups: groups, status: 130, label: "SIGINT to a real boot")
    }

    @Test("SIGTERM to `build` while make runs: every make gone, status 143",
          .needs(.unpackedKernel))
    func terminateBuild() async throws {
        let folder = NSTemporaryDirectory() + "kmatrix-build-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(folder)/cache", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/cache/src", withDestinationPath: try #require(TeardownFixtures.unpackedSources))
        let session = try launch(["build", "--project", repositoryRoot, "--cache", "\(folder)/cache", "--target", "x86_64-pc"], folder: folder)
        // make and its sub-make, both naming the private build directory.
        let groups = try await running(session, atLeast: 2)
        kill(session.process.processIdentifier, SIGTERM)
        try await expectAllGone(session, groups: groups, status: 143, label: "SIGTERM to build")
    }

    /// A private cache whose kernel source is the workspace's unpacked tree (linked).
    func buildFolder() throws -> String {
        let folder = NSTemporaryDirectory() + "kmatrix-build-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(folder)/cache", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/cache/src", withDestinationPath: try #require(TeardownFixtures.unpackedSources))
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/cache/sources", withDestinationPath: "\(Workspace.defaultRoot())/sources")
        return folder
    }

    @Test("kill -9 of `build` while make compiles: the watchdog takes every make with it",
          .needs(.unpackedKernel))
    func killNineMidBuild() async throws {
        let folder = try buildFolder()
        let session = try launch(["build", "--project", repositoryRoot, "--cache", "\(folder)/cache", "--target", "x86_64-pc"], folder: folder)
        let groups = try await running(session, atLeast: 2)
        kill(session.process.processIdentifier, SIGKILL)
        try await expectAllGone(session, groups: groups, status: nil, label: "kill -9 mid-build")
    }

    @Test("`run` started while `build` holds the cache: exit 3 naming the holder; SIGTERM to a `run` mid-build: 143",
          .needs(.unpackedKernel))
    func runBesideBuildAndTerminateRun() async throws {
        let folder = try buildFolder()
        let build = try launch(["build", "--project", repositoryRoot, "--cache", "\(folder)/cache", "--target", "x86_64-pc"], folder: folder)
        let groups = try await running(build, atLeast: 2)
        let second = Process()
        second.executableURL = URL(fileURLWithPath: try #require(Self.binary))
        second.arguments = ["run", "--project", repositoryRoot, "--cache", "\(folder)/cache", "--target", "x86_64-pc", "--plain"]
        let pipe = Pipe()
        second.standardOutput = pipe
        second.standardError = pipe
        try second.run()
        let said = String(decoding: await pipe.fileHandleForReading.readAll(), as: UTF8.self)
        await second.exited()
        #expect(second.terminationStatus == 3, "\(said)")
        #expect(said.contains("another kmatrix run (pid \(build.process.processIdentifier))"), "\(said)")
        kill(build.process.processIdentifier, SIGTERM)
        try await expectAllGone(build, groups: groups, status: 143, label: "SIGTERM to build, a run waiting")

        // The same for `run` itself: SIGTERM mid-build ends every make, status 143.
        let again = try buildFolder()
        let run = try launch(["run", "--project", repositoryRoot, "--cache", "\(again)/cache", "--target", "x86_64-pc", "--plain"], folder: again)
        let runGroups = try await running(run, atLeast: 2)
        kill(run.process.processIdentifier, SIGTERM)
        try await expectAllGone(run, groups: runGroups, status: 143, label: "SIGTERM to run")
    }

    @Test("SIGHUP to `doctor` during its KVM probe: the probe's QEMUs gone, status 129",
          BootFixtures.needs)
    func hangUpDoctor() async throws {
        let folder = NSTemporaryDirectory() + "kmatrix-doctor-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(folder)/cache/probe", withIntermediateDirectories: true)
        // The probe kernel under the private cache, so the probe's QEMUs name the folder.
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/cache/probe/vmlinuz", withDestinationPath: Self.probeKernel)
        let session = try launch(["doctor", "--project", repositoryRoot, "--cache", "\(folder)/cache"], folder: folder)
        let groups = try await running(session, atLeast: 1)
        kill(session.process.processIdentifier, SIGHUP)
        try await expectAllGone(session, groups: groups, status: 129, label: "SIGHUP to doctor")
    }
}
