import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixScheduler

struct BootCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot the built cells in QEMU and classify each boot: pass, panic, init-failed, no-console-output, hang, timeout, qemu-error.",
        discussion: """
            Without --kernel or --tuxmake, runs the run's graph up to the boot for each selected \
            cell (building, or taking from the cache, what it needs) and boots it whatever its DTB \
            check said, printing the time from QEMU's start to each phase; logs go to the run \
            directory. With --kernel (a kernel someone else built, \
            such as a Debian vmlinuz) or --tuxmake DIR (a TuxMake output directory), boots that \
            on the one --target given, with kmatrix's initramfs for the target unless --initrd. \
            --gdb starts QEMU halted for a debugger, its gdb stub listening on 127.0.0.1 only \
            (-gdb tcp:127.0.0.1:PORT -S), with the console on this terminal, and prints the gdb \
            command line. A disk root image is attached with snapshot=on: guest writes never \
            reach the image.
            """)

    @OptionGroup var options: ProjectOptions
    @OptionGroup var upstream: UpstreamCacheOption
    @Option(help: "Boot this kernel image instead of a cell's (needs one --target).") var kernel: String?
    @Option(help: "The DTB for --kernel.") var dtb: String?
    @Option(help: "The initramfs or initrd for --kernel or --tuxmake (default: kmatrix's for the target, if built).") var initrd: String?
    @Option(help: "A TuxMake output directory: its metadata.json names the kernel and the DTBs (needs one --target).") var tuxmake: String?
    @Option(help: "The target's root device for --kernel/--tuxmake (default: its initramfs one).") var root: String?
    @Flag(help: "Start QEMU halted and waiting for gdb on 127.0.0.1:PORT (--gdb-port), console on this terminal.") var gdb = false
    @Option(help: "The loopback port QEMU's gdb stub listens on with --gdb.") var gdbPort = QemuInvocation.defaultGdbPort
    @Option(help: "The line prefix userspace prints when it is up.") var marker = BootMarker.prefix
    @Option(help: "auto (KVM where the probe proved it), tcg or kvm.") var accel = AccelChoice.auto
    @Option(help: "Boot deadline in seconds (default: the target's bootTimeoutSeconds).") var timeout: Double?
    @Option(help: "Console silence in seconds that makes a hang (default: the target's silenceSeconds).") var silence: Double?
    @Option(help: "Seconds a silent guest may sit idle (QEMU using no CPU) before it is a hang; 0 turns the check off (default: 3).") var idle: Double?
    @Flag(help: "Add the target's earlycon= to the kernel command line.") var earlycon = false
    @Option(name: .customLong("append"), help: "A word to add to the kernel command line (repeatable).") var appendWords: [String] = []
    @Flag(help: "Print the boot records as JSON (schema kmatrix-boot/1).") var json = false
    @OptionGroup var trials: BootTrialOptions

    func validate() throws {
        guard (1...65535).contains(gdbPort) else { throw KmatrixError.badInput("--gdb-port \(gdbPort): must be 1 to 65535") }
        if kernel != nil, tuxmake != nil { throw KmatrixError.badInput("--kernel and --tuxmake both name a kernel: give one") }
        if kernel == nil, tuxmake == nil, dtb != nil || initrd != nil || root != nil {
            throw KmatrixError.badInput("--dtb, --initrd and --root go with --kernel or --tuxmake")
        }
        if let idle, idle < 0 { throw KmatrixError.badInput("--idle \(idle): must be 0 (off) or positive") }
        for (name, value) in [("--timeout", timeout), ("--silence", silence)] {
            if let value, value <= 0 { throw KmatrixError.badInput("\(name) \(value): must be positive") }
        }
    }

    /// One boot to run: what, on which target, where its log goes.
    struct Job {
        var name: String
        var invocation: QemuInvocation
        var logDirectory: String
        var buildDirectory: String?
        var expect: String?
    }

    func run() async throws {
        let project = try options.load()
        let workspace = options.workspace
        // A kernel someone else built, or a debugger session: one machine, booted here.
        if kernel != nil || tuxmake != nil || gdb {
            var job: Job
            if kernel != nil || tuxmake != nil {
                job = try await externalJob(project: project, workspace: workspace)
            } else {
                let cells = try options.selectedCells(in: project)
                guard cells.count == 1, let cell = cells.first else {
                    throw KmatrixError.badInput("--gdb debugs one boot; \(cells.count) cells are selected: pick one with --cell")
                }
                let images = try BootImages.forCell(cell, workspace: workspace)
                job = Job(name: cell.id, invocation: images.invocation(target: cell.target, rootDevice: cell.rootDevice),
                          logDirectory: BootRunner.logDirectory(for: cell, workspace: workspace), buildDirectory: images.buildDirectory,
                          expect: cell.expect?.rawValue)
            }
            if gdb { return try await debug(job) }
            let choice = AcceleratorChoice(probeKernel: ProbeKernel.find(workspace: workspace, cells: project.cells),
                                           cacheFile: AcceleratorChoice.cacheFile(in: workspace))
            let (accelerator, reason) = try await accel.pick(for: job.invocation.target, choice: choice)
            job.invocation.accelerator = accelerator
            job.invocation.earlycon = earlycon
            job.invocation.extraAppend += bootSettings.kernelArguments
            if !json { print("== \(job.name): booting (\(accelerator.rawValue)), log \(job.logDirectory)/boot.log") }
            let timeouts = bootSettings.timeouts(job.invocation.target, rootDevice: job.invocation.rootDevice)
            let record = await BootAttempts.run(boots: trials.boots, retries: trials.retries, logPath: "\(job.logDirectory)/boot.log") { [job] path in
                await BootRunner.run(job.invocation, logPath: path, marker: marker, timeouts: timeouts, acceleratorReason: reason,
                                     expected: MarkerExpectation(arch: job.invocation.target.userspace.unameMachine))
            }
            if ProcessGroups.stopping { throw KmatrixError(.interrupted, "interrupted; QEMU stopped (log \(job.logDirectory)/boot.log)") }
            try? writeRecord(record, to: "\(job.logDirectory)/boot.json")
            return try report([(job.name, record, nil)], hostFailed: false)
        }

        // Cells: the run's graph up to the boot, so what is not built yet is built (or taken
        // from the cache) first, with the same commands `run` and `plan` show. The boot goes
        // ahead whatever the DTB check said: it was asked for.
        var settings = RunSettings(jobs: ProcessInfo.processInfo.activeProcessorCount)
        settings.goals = [.boot]
        settings.bootAnyway = true
        settings.bootSettings = bootSettings
        settings.progressToStandardError = true
        if accel == .kvm {
            for cell in try options.selectedCells(in: project) where cell.target.qemu.kvmHostArch != KvmProbe.hostArch {
                throw KmatrixError.badInput("--accel kvm: \(cell.target.name) cannot run under KVM on this \(KvmProbe.hostArch) host")
            }
        }
        let finished = try await runPart(options, settings, upstream: upstream)
        var records: [(String, BootRecord?)] = []
        for cell in finished.results.cells {
            var record: BootRecord?
            if case .boot(let made)? = finished.outcomes[StepID(.boot, cell.id)]?.output { record = made }
            if record == nil, !json {
                print("== \(cell.id): not booted: \(cell.outcome.rawValue) in \(cell.failedStep ?? "?")")
                for line in cell.excerpt.prefix(12) { print("  | \(line)") }
            }
            records.append((cell.id, record))
        }
        if finished.results.run.interrupted { throw ExitCode(130) }
        let expects = Dictionary(project.cells.map { ($0.id, $0.expect?.rawValue) }, uniquingKeysWith: { a, _ in a })
        try report(records.map { entry in (entry.0, entry.1, expects[entry.0] ?? nil) }, hostFailed: finished.hostFailed,
                   failedCells: finished.results.cells.filter { !$0.passed }.count)
    }

    /// The flags that shape a boot, as the boot step takes them.
    var bootSettings: BootSettings {
        var settings = BootSettings()
        settings.earlycon = earlycon
        settings.marker = marker
        settings.accelerator = accel.forced
        settings.timeout = timeout
        settings.silence = silence
        settings.idle = idle
        settings.appendWords = appendWords
        trials.apply(to: &settings)
        return settings
    }

    /// Prints the boots (a summary each and a table, or JSON) and ends with the exit status.
    func report(_ records: [(name: String, record: BootRecord?, expect: String?)], hostFailed: Bool, failedCells: Int? = nil) throws {
        let booted = records.compactMap { entry in entry.record.map { (entry.name, $0, entry.expect) } }
        if json {
            try printJSON(["boots": booted.map { NamedRecord(name: $0.0, record: $0.1) }], schema: "kmatrix-boot/1")
        } else {
            for (name, record, expect) in booted {
                print("== \(name): \(record.accelerator.rawValue), log \(record.logPath)")
                printSummary(record, expect: expect)
            }
            print("")
            print(table(["cell", "outcome", "accel", "first byte", "firmware", "Linux", "init", "userspace", "total"], booted.map { name, record, expect in
                let phases = record.phases
                return [name, record.outcome.rawValue + (expected(record, expect) && !record.outcome.passed ? " (expected)" : ""),
                        record.accelerator.rawValue, bootSeconds(phases.firstOutput), bootSeconds(phases.firmware), bootSeconds(phases.linuxVersion),
                        bootSeconds(phases.initStarted), bootSeconds(phases.userspace), bootSeconds(record.seconds)]
            }))
        }
        if hostFailed { throw ExitCode(3) }
        if let failedCells, failedCells > 0 { throw ExitCode(1) }
        if booted.contains(where: { !expected($0.1, $0.2) }) { throw ExitCode(1) }
    }

    struct NamedRecord: Encodable {
        var name: String
        var record: BootRecord
    }

    func expected(_ record: BootRecord, _ expect: String?) -> Bool {
        record.outcome.passed || record.outcome.rawValue == expect
    }

    /// A kernel kmatrix did not build, on the one --target given.
    func externalJob(project: Project, workspace: Workspace) async throws -> Job {
        guard options.targets.count == 1, let name = options.targets.first else {
            throw KmatrixError.badInput("--kernel and --tuxmake need exactly one --target (the machine to boot it on)")
        }
        guard let target = project.targets[name] else {
            throw KmatrixError.badInput("--target \(name): no such target; known: \(project.targets.keys.sorted().joined(separator: ", "))")
        }
        let rootName = root ?? target.rootDevices.first(where: { $0.value.kind == .initramfs })?.key ?? target.rootDevices.keys.sorted().first ?? ""
        guard let rootDevice = target.rootDevices[rootName] else {
            throw KmatrixError.badInput("--root \(rootName): \(target.name) has no such root device; known: \(target.rootDevices.keys.sorted().joined(separator: ", "))")
        }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let logDirectory = "\(workspace.runs)/boot-\(target.name)-\(stamp)"
        let cwd = FileManager.default.currentDirectoryPath
        var images: BootImages
        if let tuxmake {
            images = try await BootImages.fromTuxMake(absolutePath(tuxmake, relativeTo: cwd), target: target, scratch: "\(logDirectory)/tuxmake")
        } else {
            images = BootImages(kernel: absolutePath(kernel ?? "", relativeTo: cwd))
        }
        if let dtb { images.dtb = absolutePath(dtb, relativeTo: cwd) }
        for (what, path) in [("kernel", images.kernel), ("DTB", images.dtb), ("initrd", initrd.map { absolutePath($0, relativeTo: cwd) })] {
            if let path, !FileManager.default.fileExists(atPath: path) { throw KmatrixError.badInput("the \(what) \(path) does not exist") }
        }
        if target.deviceTree.source == .build, images.dtb == nil {
            throw KmatrixError.badInput("\(target.name) boots with a DTB from the kernel build (\(target.kernel.dtbs.map(\.fileName).joined(separator: ", "))): pass --dtb")
        }
        if let initrd {
            images.initrd = absolutePath(initrd, relativeTo: cwd)
            images.disk = images.initrd
        } else if let cell = project.cells.first(where: { $0.target.name == target.name && $0.rootName == rootName
                                                        && BootImages.rootImage($0, workspace: workspace) != nil }),
                  let built = BootImages.rootImage(cell, workspace: workspace) {
            images.initrd = built
            images.disk = built
            if !json { print("using the \(rootName) image kmatrix built for \(cell.id): \(built)") }
        } else if rootDevice.kind == .initramfs {
            throw KmatrixError(.hostFailure, "no initramfs for \(target.name): pass --initrd, or build one (kmatrix build --target \(target.name))")
        }
        return Job(name: "\(target.name) \((images.kernel as NSString).lastPathComponent)",
                   invocation: images.invocation(target: target, rootDevice: rootDevice),
                   logDirectory: logDirectory, buildDirectory: images.buildDirectory, expect: nil)
    }

    /// QEMU halted for gdb, console on this terminal.
    func debug(_ job: Job) async throws {
        var invocation = job.invocation
        invocation.gdb = true
        invocation.gdbPort = gdbPort
        invocation.serial = "mon:stdio"
        invocation.accelerator = .tcg
        invocation.earlycon = earlycon
        // KASLR would move the kernel away from vmlinux's addresses.
        invocation.extraAppend += ["nokaslr"] + appendWords
        print("QEMU waits for gdb on \(invocation.gdbAddress) (loopback only). In another terminal:")
        if let build = job.buildDirectory {
            let attach = GdbAttach(buildDirectory: build, target: invocation.target, port: gdbPort)
            print("  " + attach.command.map(shellQuote).joined(separator: " "))
            for note in attach.notes { print("  note: \(note)") }
        } else {
            print("  gdb -q -ex 'target remote \(invocation.gdbAddress)' <your vmlinux>")
        }
        print("then e.g. 'hbreak start_kernel', 'continue', 'lx-dmesg'. Ctrl-A X quits QEMU.")
        print("$ \(invocation.command)")
        let termination = try await AttachedConsole.run(invocation)
        if !termination.succeeded { throw ExitCode(1) }
    }

    func writeRecord(_ record: BootRecord, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(record).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func printSummary(_ record: BootRecord, expect: String?) {
        print("  \(record.outcome.rawValue): \(record.reason) (\(bootSeconds(record.seconds)))")
        for line in bootDetails(record) { print("  \(line)") }
        if !record.outcome.passed {
            if let after = record.reportedAfter { print("  reported \(bootSeconds(after)) after it showed") }
            let lines = record.trace.isEmpty ? Array(record.lastLines.suffix(8)) : Array(record.trace.prefix(12))
            for line in lines { print("  | \(line)") }
            if !record.qemuStandardError.isEmpty, record.outcome == .qemuError {
                for line in record.qemuStandardError.split(separator: "\n").prefix(5) { print("  qemu: \(line)") }
            }
            if expected(record, expect) { print("  (expected: the matrix marks this cell '\(expect ?? "")')") }
        }
    }
}

/// `--accel` of `boot` and `shell`.
enum AccelChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto, tcg, kvm

    /// The accelerator the flag forces; nil leaves it to the KVM probe.
    var forced: Accelerator? { self == .auto ? nil : Accelerator(rawValue: rawValue) }

    /// The accelerator for `target` and why: as asked, or the probe's verdict for `auto`.
    func pick(for target: Target, choice: AcceleratorChoice) async throws(KmatrixError) -> (Accelerator, String) {
        switch self {
        case .tcg: return (.tcg, "--accel tcg")
        case .kvm:
            guard target.qemu.kvmHostArch == KvmProbe.hostArch else {
                throw .badInput("--accel kvm: \(target.name) cannot run under KVM on this \(KvmProbe.hostArch) host")
            }
            return (.kvm, "--accel kvm (the probe was not consulted)")
        case .auto:
            let picked = await choice.choose(for: target)
            return (picked.accelerator, picked.reason)
        }
    }
}

func bootSeconds(_ value: Double?) -> String {
    value.map { String(format: "%.2f s", $0) } ?? "-"
}
