import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixDeviceTree
import KmatrixKernel

/// `dtb.check`: the DTB the boot will pass (from the kernel build, or the one QEMU
/// generates for its machine, dumped with `-M …,dumpdtb=`) checked with libfdt against the
/// drivers built into vmlinux. Not cached: it takes milliseconds, and its verdict is part
/// of every run's story.
struct DeviceTreeStep: Step {
    let cell: Cell

    var id: StepID { StepID(.dtbCheck, cell.id) }
    var kernelID: StepID { StepID(.kernelBuild, cell.id) }
    var dependencies: [StepID] { [kernelID] }

    /// Where QEMU's own DTB is dumped: beside the cell's images, the same in plan and run.
    func dumpedDTB(_ workspace: Workspace) -> String { "\(workspace.images(cell))/qemu.dtb" }

    func commands(_ context: StepContext) -> [Command] {
        guard cell.target.deviceTree.source == .qemu else { return [] }
        var invocation = BootStep.invocation(cell, workspace: context.workspace, settings: context.settings.bootSettings, withRoot: false)
        invocation.accelerator = .tcg
        return [invocation.dumpDTBCommand(to: dumpedDTB(context.workspace))]
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        switch cell.target.deviceTree.source {
        case .none: return planned(note: "no device tree on this target", commands: [])
        case .build:
            return planned(note: "check \(KernelBuildStep.linkedDTB(cell, workspace: context.workspace) ?? "?") with libfdt against vmlinux", commands: [])
        case .qemu:
            return planned(note: "check the DTB QEMU generates with libfdt against vmlinux", commands: commands(context))
        }
    }

    func run(_ context: StepContext, _ inputs: StepInputs) async -> StepOutcome {
        let log = context.logPath(id)
        let kernel: KernelBuildRecord
        do throws(StepFailure) { kernel = try inputs.kernel(kernelID) } catch {
            return .failed(error.failure, error.message, logPath: log)
        }
        let target = cell.target
        let commands = commands(context)
        let dtb: String
        switch target.deviceTree.source {
        case .none:
            return .passed("no device tree on \(target.name)", output: .deviceTree(nil))
        case .build:
            guard let name = target.kernel.dtbs.first?.fileName, let path = kernel.artifacts.dtbs[name] else {
                return .failed(.dtbCheckFailed, "the kernel build produced no \(target.kernel.dtbs.first?.fileName ?? "DTB")", logPath: log)
            }
            dtb = path
        case .qemu:
            dtb = dumpedDTB(context.workspace)
            try? FileManager.default.removeItem(atPath: dtb)
            do {
                let output = try await ProcessRunner.capture(commands[0], timeout: .seconds(60))
                guard output.termination.succeeded, FileManager.default.fileExists(atPath: dtb) else {
                    return .failed(.infrastructure, "QEMU did not dump its DTB (\(output.termination)): \(output.standardError.prefix(300))",
                                   logPath: log, commands: commands)
                }
            } catch {
                return .host(error, logPath: log, commands: commands)
            }
        }
        var drivers: KernelDrivers?
        var kernelProblem: String?
        if let vmlinux = kernel.artifacts.vmlinux {
            // Scanning vmlinux reads megabytes: off the cooperative pool.
            do { drivers = try await Blocking.run { () throws(KmatrixError) in try KernelCompatibles.drivers(vmlinux: vmlinux) } } catch {
                kernelProblem = error.message
            }
        } else {
            kernelProblem = "the kernel build recorded no vmlinux"
        }
        let report = DeviceTreeCheck.run(dtb: dtb, target: target, drivers: drivers, kernel: kernel.artifacts.vmlinux,
                                         kernelProblem: kernelProblem)
        if let log { try? Data(report.text.utf8).write(to: URL(fileURLWithPath: log)) }
        let summary = "\((dtb as NSString).lastPathComponent): \(report.errors.count) errors, \(report.warnings.count) warnings"
        guard report.passed else {
            var outcome = StepOutcome.failed(.dtbCheckFailed, summary, logPath: log, commands: commands, excerpt: report.errors.map(\.text))
            outcome.output = .deviceTree(report)
            return outcome
        }
        return .passed(summary, output: .deviceTree(report), logPath: log, commands: commands)
    }
}
