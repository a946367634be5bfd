import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixDeviceTree
import KmatrixKernel

extension StepContext {
    /// The cell's story from its steps' outcomes and the records they left.
    func result(for cell: Cell, steps: [StepID], outcomes: [StepID: StepOutcome]) async -> CellResult {
        // The first step that failed decides; skipped steps are its consequences.
        let failing = steps.first { outcomes[$0]?.status == .failed }
        let interrupted = steps.contains { outcomes[$0]?.status == .interrupted }
        var outcome = "pass"
        if let failing { outcome = outcomes[failing]?.classification ?? "failed" } else if interrupted { outcome = "interrupted" }
        let expected = cell.expect?.rawValue ?? "pass"
        var result = CellResult(id: cell.id, target: cell.target.name, toolchain: cell.toolchain.name, profile: cell.profileName,
                                rootfs: cell.rootName, arch: cell.target.kernel.arch, outcome: outcome, passed: outcome == expected,
                                failedStep: failing?.description, steps: steps.map(\.description))
        let records = self.records
        if let configuration = await records.configurations[cell.id] {
            result.config = ConfigSummary(requested: configuration.requestedCount, mismatches: configuration.mismatches.map {
                ConfigSummary.Mismatch(option: $0.name, asked: KernelOption(name: $0.name, value: $0.requested).configLine,
                                       got: $0.actual.map { "\($0)" } ?? ($0.absent ? "absent (a dependency is off)" : "is not set"))
            })
        }
        if let kernel = await records.kernels[cell.id] {
            result.kernel = KernelSummary(toolchainVersion: "\(kernel.toolchain.compiler) \(kernel.toolchain.version)",
                                          sourceSHA256: kernel.sourceSHA256, configSHA256: kernel.configSHA256 ?? "",
                                          buildSeconds: kernel.buildSeconds, imageBytes: kernel.imageBytes ?? 0,
                                          warnings: kernel.warnings, errors: kernel.errors)
            var files: [(String, String?)] = [("image", kernel.artifacts.image), ("vmlinux", kernel.artifacts.vmlinux),
                                              ("System.map", kernel.artifacts.systemMap), ("config", kernel.artifacts.config)]
            files += kernel.artifacts.dtbs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            for (name, path) in files { if let path, let artifact = artifact(name, path) { result.artifacts.append(artifact) } }
        }
        if let busybox = await records.busyboxes[busyboxScope(cell)] {
            let id = StepID("busybox.build", busyboxScope(cell))
            result.busybox = BusyboxSummary(version: busybox.compilerVersion, buildSeconds: busybox.buildSeconds,
                                            cacheHit: outcomes[id]?.cacheHit ?? false)
            if let artifact = artifact("busybox", busybox.binary) { result.artifacts.append(artifact) }
        }
        if let image = await records.images[cell.id], let artifact = artifact((image as NSString).lastPathComponent, image) {
            result.artifacts.append(artifact)
        }
        if let report = await records.deviceTrees[cell.id] {
            result.dtb = DeviceTreeSummary(file: (report.dtb as NSString).lastPathComponent, passed: report.passed,
                                           errors: report.errors.count, warnings: report.warnings.count,
                                           findings: report.findings.filter { $0.severity != .info }.map {
                                               .init(severity: $0.severity.rawValue, node: $0.node ?? "/",
                                                     reason: $0.chain.isEmpty ? $0.reason : "\($0.reason): \($0.chainText)")
                                           })
        }
        if let boot = await records.boots[cell.id] {
            let named: [(String, Double?)] = [("first-output", boot.phases.firstOutput), ("firmware", boot.phases.firmware),
                                              ("linux", boot.phases.linuxVersion), ("init", boot.phases.initStarted),
                                              ("marker", boot.phases.userspace)]
            result.boot = BootSummary(outcome: boot.outcome.rawValue, accelerator: boot.accelerator.rawValue,
                                      phases: named.compactMap { name, value in value.map { .init(name: name, seconds: $0) } },
                                      seconds: boot.seconds, qemuVersion: boot.qemuVersion ?? "", command: boot.command,
                                      log: boot.logPath, tail: boot.outcome.passed ? [] : boot.lastLines)
        }
        if let failing {
            var excerpt = await records.excerpts[failing] ?? []
            if excerpt.isEmpty, let log = outcomes[failing]?.logPath { excerpt = lastLines(of: log, count: 20) }
            if excerpt.isEmpty, let summary = outcomes[failing]?.summary { excerpt = [summary] }
            result.excerpt = excerpt
        }
        return result
    }

    func artifact(_ name: String, _ path: String) -> Artifact? {
        guard let bytes = fileSize(path), let sha = try? SHA256.hex(fileAt: path) else { return nil }
        return Artifact(name: name, path: path, bytes: bytes, sha256: sha)
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
