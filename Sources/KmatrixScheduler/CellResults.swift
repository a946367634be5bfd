import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixDeviceTree
import KmatrixKernel
import KmatrixUserspace

extension CellResult {
    /// The cell's story from its steps' outcomes and the typed outputs they handed on.
    init(cell: Cell, steps: [StepID], outcomes: [StepID: StepOutcome], project: Project) {
        // The first step that failed decides; skipped steps are its consequences.
        let failing = steps.first { outcomes[$0]?.status == .failed }
        let interrupted = steps.contains { outcomes[$0]?.status == .interrupted }
        var outcome = CellOutcome.pass
        if let failing { outcome = .failed(outcomes[failing]?.failure ?? .infrastructure) } else if interrupted { outcome = .failed(.interrupted) }
        if outcome == .pass, case .boot(let boot)? = outcomes[StepID(.boot, cell.id)]?.output, boot.flaky { outcome = .flaky }
        self.init(id: cell.id, target: cell.target.name, toolchain: cell.toolchain.name, profile: cell.profileName,
                  rootfs: cell.rootName, arch: cell.target.kernel.arch, outcome: outcome, passed: outcome.meets(cell.expect),
                  failedStep: failing?.description, steps: steps.map(\.description))
        kernelName = cell.kernel.name
        for id in steps {
            guard let output = outcomes[id]?.output else { continue }
            switch output {
            case .source: break
            case .config(let config): self.config = ConfigSummary(config.configuration)
            case .kernel(let kernel):
                add(kernel)
                if outcomes[id]?.cacheHit == false { self.kernel?.ccache = kernel.ccacheStats }
            case .busybox(let busybox):
                self.busybox = BusyboxSummary(version: busybox.compilerVersion, buildSeconds: busybox.buildSeconds,
                                              cacheHit: outcomes[id]?.cacheHit ?? false)
                if let artifact = Artifact(name: "busybox", path: busybox.binary) { artifacts.append(artifact) }
            case .rootfs(let rootfs):
                if let artifact = Artifact(name: (rootfs.image as NSString).lastPathComponent, path: rootfs.image) { artifacts.append(artifact) }
            case .deviceTree(let report): if let report { dtb = DeviceTreeSummary(report) }
            case .boot(let record):
                boot = BootSummary(record)
                tests = record.tests
            }
        }
        if let failing, let failed = outcomes[failing] {
            var lines = failed.excerpt
            if lines.isEmpty, let log = failed.logPath { lines = lastLines(of: log, count: 20) }
            if lines.isEmpty { lines = [failed.summary] }
            excerpt = lines
        }
    }

    mutating func add(_ kernel: KernelBuildRecord) {
        self.kernel = KernelSummary(toolchainVersion: "\(kernel.toolchain.compiler) \(kernel.toolchain.version)",
                                    sourceSHA256: kernel.sourceSHA256, configSHA256: kernel.configSHA256 ?? "",
                                    buildSeconds: kernel.buildSeconds, imageBytes: kernel.imageBytes ?? 0,
                                    warnings: kernel.warnings, errors: kernel.errors)
        build = BuildFacts(kernel)
        var files: [(String, String?)] = [("image", kernel.artifacts.image), ("vmlinux", kernel.artifacts.vmlinux),
                                          ("System.map", kernel.artifacts.systemMap), ("config", kernel.artifacts.config)]
        files += kernel.artifacts.dtbs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (name, path) in files {
            if let path, let artifact = Artifact(name: name, path: path) { artifacts.append(artifact) }
        }
    }
}

extension Artifact {
    /// A file with its size and sha256; nil when it is not there.
    init?(name: String, path: String) {
        guard let bytes = fileSize(path), let sha = try? SHA256.hex(fileAt: path) else { return nil }
        self.init(name: name, path: path, bytes: bytes, sha256: sha)
    }
}

extension ConfigSummary {
    init(_ configuration: KernelConfiguration) {
        self.init(requested: configuration.requestedCount, mismatches: configuration.mismatches.map {
            ConfigSummary.Mismatch(option: $0.name, asked: KernelOption(name: $0.name, value: $0.requested).configLine,
                                   got: $0.actual.map { "\($0)" } ?? ($0.absent ? "absent (a dependency is off)" : "is not set"))
        })
    }
}

extension DeviceTreeSummary {
    init(_ report: DeviceTreeReport) {
        self.init(file: (report.dtb as NSString).lastPathComponent, passed: report.passed,
                  errors: report.errors.count, warnings: report.warnings.count,
                  findings: report.reportedFindings.map {
                      .init(severity: $0.severity.rawValue, node: $0.node ?? "/",
                            reason: $0.chain.isEmpty ? $0.reason : "\($0.reason): \($0.chainText)")
                  })
    }
}

extension BootSummary {
    init(_ boot: BootRecord) {
        self.init(outcome: boot.outcome.rawValue, accelerator: boot.accelerator.rawValue,
                  phases: boot.phases.named.compactMap { name, value in value.map { .init(name: name, seconds: $0) } },
                  seconds: boot.seconds, qemuVersion: boot.qemuVersion ?? "", command: boot.command,
                  log: boot.logPath, tail: boot.outcome.passed ? [] : boot.lastLines)
        (kernelPhases, kernelWarnings, slowestInitcalls) = (boot.kernelPhases, boot.kernelWarnings, boot.slowestInitcalls)
        (attempts, spread) = (boot.attempts.isEmpty ? nil : boot.attempts, boot.spread.isEmpty ? nil : boot.spread)
    }
}

/// The last lines of a log file, read from its end (logs run to megabytes).
func lastLines(of path: String, count: Int) -> [String] {
    guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    let start = size > 16384 ? size - 16384 : 0
    try? handle.seek(toOffset: start)
    let text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    return Array(text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }.suffix(count))
}
