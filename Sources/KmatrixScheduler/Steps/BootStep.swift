import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixUserspace

/// How boots behave beyond the target's defaults (`kmatrix boot`'s flags).
public struct BootSettings: Sendable {
    public var earlycon = false
    public var marker = BootMarker.prefix
    /// Forces an accelerator instead of the KVM probe's choice.
    public var accelerator: Accelerator?
    public var timeout: Double?
    public var silence: Double?
    /// 0 turns the idle check off.
    public var idle: Double?
    public var appendWords: [String] = []
    /// Boot a failed cell again, up to this many more times (`--retries`).
    public var retries = 0
    /// Boot each cell this many times and keep the phases' spread (`--boots`).
    public var boots = 1
    /// Boot with `initcall_debug` and record the slowest initcalls.
    public var initcallDebug = false

    public init() {}

    /// The words added to the kernel command line: `--append`'s, and what `--initcall-debug`
    /// needs (its lines are KERN_DEBUG: `loglevel=8` lets them reach the console).
    public var kernelArguments: [String] { appendWords + (initcallDebug ? ["initcall_debug", "loglevel=8"] : []) }

    /// The target's (and root device's) deadlines with these overrides.
    public func timeouts(_ target: Target, rootDevice: RootDeviceSpec? = nil) -> BootTimeouts {
        var timeouts = BootTimeouts(target, rootDevice: rootDevice)
        if let timeout { timeouts.total = timeout }
        if let silence { timeouts.silence = silence }
        if let idle { timeouts.idle = idle > 0 ? min(idle, timeouts.silence) : nil }
        return timeouts
    }
}

/// `boot`: the cell's kernel, DTB and root image (as linked in its images folder) in
/// QEMU, the console classified as it arrives. Never cached: booting is what a run is for.
/// A boot does not wait for a job slot: it is seconds of one core, and queueing it behind
/// a compile would delay a verdict by minutes; the runner's idle check counts run-queue
/// wait as busy, so the brief oversubscription cannot fake a hang.
struct BootStep: Step {
    let cell: Cell

    var id: StepID { StepID(.boot, cell.id) }
    let dependencies: [StepID]

    /// The QEMU invocation of the cell, from the images folder: the same paths in `plan`,
    /// in the run, for `kmatrix boot` and `shell`.
    static func invocation(_ cell: Cell, workspace: Workspace, settings: BootSettings, withRoot: Bool = true) -> QemuInvocation {
        let images = workspace.images(cell)
        let dtb = cell.target.deviceTree.source == .build ? KernelBuildStep.linkedDTB(cell, workspace: workspace) : nil
        let kind = cell.rootDevice.kind
        let root = withRoot ? "\(images)/\(kind == .initramfs ? "initramfs.cpio.gz" : "rootfs.\(cell.rootDevice.filesystem ?? "ext2")")" : nil
        var invocation = QemuInvocation(target: cell.target, rootDevice: cell.rootDevice,
                                        kernel: KernelBuildStep.linkedImage(cell, workspace: workspace), dtb: dtb,
                                        initrd: kind == .disk ? nil : root, disk: kind == .disk ? root : nil)
        invocation.earlycon = settings.earlycon
        invocation.extraAppend += settings.kernelArguments
        if kind == .initrd, let root, let bytes = fileSize(root), bytes > 4096 * 1024 {
            // The RAM disk defaults to 4 MiB (CONFIG_BLK_DEV_RAM_SIZE); a bigger image needs room.
            invocation.extraAppend.append("ramdisk_size=\((bytes + 1023) / 1024 + 1024)")
        }
        return invocation
    }


    /// What `plan` can say about the accelerator without probing: TCG unless this host
    /// could run the target under KVM and a recent probe verdict says KVM works.
    static func plannedAccelerator(_ cell: Cell, workspace: Workspace) -> (Accelerator, String) {
        guard cell.target.qemu.kvmHostArch == KvmProbe.hostArch else { return (.tcg, "TCG: not this host's architecture") }
        guard let verdict = AcceleratorChoice.lastVerdict(in: workspace) else {
            return (.tcg, "TCG unless the KVM probe (not run yet) proves KVM boots Linux here")
        }
        return verdict.usable ? (.kvm, "KVM: the last probe proved it") : (.tcg, "TCG: the last KVM probe failed")
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        var invocation = Self.invocation(cell, workspace: context.workspace, settings: context.settings.bootSettings)
        let (accelerator, reason) = context.settings.bootSettings.accelerator.map { ($0, "forced") }
            ?? Self.plannedAccelerator(cell, workspace: context.workspace)
        invocation.accelerator = accelerator
        return planned(note: "console to the boot log, classified as it arrives; \(reason)", commands: [invocation.command])
    }

    func run(_ context: StepContext, _ inputs: StepInputs) async -> StepOutcome {
        let settings = context.settings.bootSettings
        var invocation = Self.invocation(cell, workspace: context.workspace, settings: settings)
        let reason: String
        if let forced = settings.accelerator {
            invocation.accelerator = forced
            reason = "--accel \(forced.rawValue)"
        } else if let accelerators = context.accelerators {
            let choice = await accelerators.choose(for: cell.target)
            invocation.accelerator = choice.accelerator
            reason = choice.reason
        } else {
            reason = "no KVM probe"
        }
        let log = context.logPath(id) ?? "\(context.workspace.images(cell))/boot.log"
        // The marker must name the target's machine and the release of the kernel built here.
        let kernel = try? inputs.kernel(StepID(.kernelBuild, cell.id))
        let expected = MarkerExpectation(arch: cell.target.userspace.unameMachine,
                                         release: (kernel?.artifacts.vmlinux).flatMap(KernelRelease.read),
                                         modules: (kernel?.artifacts.modules).flatMap(Self.builtModules))
        let timeouts = testTimeouts(settings)
        let awaitsTests = cell.hasGuestScripts
        var record = await BootAttempts.run(boots: settings.boots, retries: settings.retries, logPath: log) { path in
            await BootRunner.run(invocation, logPath: path, marker: settings.marker, timeouts: timeouts,
                                 acceleratorReason: reason, expected: expected, awaitsTests: awaitsTests)
        }
        record.tests = guestTestResults(record, marker: settings.marker)
        if let map = kernel?.artifacts.systemMap { record.slowestInitcalls = InitcallNames.resolve(record.slowestInitcalls, systemMap: map) }
        let phases = [("linux", record.phases.linuxVersion), ("init", record.phases.initStarted), ("marker", record.phases.userspace)]
            .compactMap { name, value in value.map { "\(name) \(String(format: "%.2f", $0)) s" } }.joined(separator: ", ")
        if record.outcome.passed, let failed = testsFailure(record, commands: [invocation.command], phases: phases) { return failed }
        let warnings = record.kernelWarnings.isEmpty ? "" : ", \(record.kernelWarnings.count) kernel warning(s)"
        guard let failure = record.outcome.failureClass else {
            let flaky = record.flaky ? "flaky (\(record.attempts.count) boots) " : ""
            return .passed("\(flaky)\(record.accelerator.rawValue): \(phases)\(warnings)", output: .boot(record), logPath: record.logPath,
                           commands: [invocation.command])
        }
        // Nothing on the console: say so when the kernel cannot have the console it was given.
        let device = cell.target.console.device
        if failure == .noConsoleOutput, let vmlinux = kernel?.artifacts.vmlinux,
           let cause = await Blocking.run({ ConsoleDriverName.missing(device: device, vmlinux: vmlinux) }) {
            record.reason += "; \(cause)"
        }
        var outcome = StepOutcome.failed(failure, "\(record.reason) [\(phases)]", logPath: record.logPath, commands: [invocation.command],
                                         excerpt: record.trace.isEmpty ? record.lastLines : record.trace)
        outcome.output = .boot(record)
        return outcome
    }
}

extension BootStep {
    /// The modules a kernel build staged (lines of its `modules.order`).
    static func builtModules(_ libModules: String) -> Int? {
        guard let staged = try? StagedModules.find(libModules: libModules),
              let order = try? String(contentsOfFile: "\(staged.directory)/modules.order", encoding: .utf8) else { return nil }
        return order.split(whereSeparator: \.isNewline).filter { !$0.isEmpty }.count
    }
}

extension BootOutcome {
    /// The failure class of a boot outcome; nil for a pass.
    public var failureClass: FailureClass? {
        switch self {
        case .pass: nil
        case .panic: .panic
        case .initFailed: .initFailed
        case .noConsoleOutput: .noConsoleOutput
        case .hang: .hang
        case .timeout: .timeout
        case .qemuError: .qemuError
        case .markerMismatch: .markerMismatch
        }
    }
}
