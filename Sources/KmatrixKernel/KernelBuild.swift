import Foundation
import KmatrixCore
import KmatrixCrypto

#if canImport(Glibc)
import Glibc
#endif

/// The two steps of a cell's kernel, callable (and cacheable) separately:
/// `configure` makes and verifies `.config`; `build` compiles from a verified one and
/// publishes the artifacts and the record.
public enum KernelBuild {
    /// Base config, the merged fragment, `olddefconfig`, then every requested option
    /// checked against the final `.config`. Fails the cell as `config-dropped-options`
    /// when Kconfig dropped or changed anything. Runs no compiler beyond Kconfig's own
    /// probes: seconds, not minutes. Output goes to `config.log` in the build directory.
    ///
    /// Throws only when the host fails (make cannot start, a folder cannot be written);
    /// a failing cell is a `KernelConfiguration` with a `failure`.
    ///
    /// `cachedBase`: a base config made earlier for the same inputs, used instead of the
    /// base make target; otherwise `madeBase` is given the `.config` the make target wrote,
    /// before anything is merged into it, to keep.
    public static func configure(_ plan: KernelPlan, inputs: KernelConfigInputs, cachedBase: String? = nil,
                                 madeBase: (@Sendable (String) async -> Void)? = nil,
                                 timeout: Duration = .seconds(600)) async throws(KmatrixError) -> KernelConfiguration {
        let start = ContinuousClock.now
        let log = "\(plan.buildDirectory)/config.log"
        try prepareDirectory(plan.buildDirectory)
        try removeIfPresent(log)
        // A stale .config from an earlier run must never be mistaken for this one's.
        try removeIfPresent(plan.configPath)
        do {
            try inputs.fragmentText.write(toFile: plan.fragmentPath, atomically: true, encoding: .utf8)
        } catch {
            throw .host("cannot write \(plan.fragmentPath)", underlying: error)
        }

        func result(_ failure: KernelFailure?, mismatches: [OptionMismatch] = [], config: KernelConfig? = nil, sha256: String? = nil) -> KernelConfiguration {
            KernelConfiguration(inputsFingerprint: inputs.fingerprint, configPath: plan.configPath, configSHA256: sha256,
                                requestedCount: inputs.requested.count, mismatches: mismatches, hasModules: config?.hasModules ?? false,
                                seconds: seconds(since: start), log: log, failure: failure)
        }

        for (index, command) in plan.configureCommands(base: inputs.base, cachedBase: cachedBase).enumerated() {
            let termination = try await runLogged(command, log: log, timeout: timeout)
            guard termination.succeeded else {
                let summary = BuildLogSummary.scan(log, tailLines: 20)
                return result(KernelFailure(.configFailed, "\(commandName(command)) failed (\(termination)); see \(log)", excerpt: summary.tail))
            }
            if index == 0, cachedBase == nil, case .makeTarget = inputs.base { await madeBase?(plan.configPath) }
        }

        let config = try KernelConfig(contentsOfFile: plan.configPath)
        let sha256: String
        do { sha256 = try SHA256.hex(fileAt: plan.configPath) } catch {
            throw .host("cannot read \(plan.configPath)", underlying: error)
        }
        let mismatches = ConfigVerification.mismatches(requested: inputs.requested, in: config)
        guard mismatches.isEmpty else {
            let message = "Kconfig dropped or changed \(mismatches.count) of \(inputs.requested.count) requested option(s); nothing was built from this config"
            appendLine(log, "kmatrix: \(message):\n" + mismatches.map { "  \($0)" }.joined(separator: "\n"))
            return result(KernelFailure(.configDroppedOptions, message, excerpt: mismatches.map(\.description)),
                          mismatches: mismatches, config: config, sha256: sha256)
        }
        return result(nil, config: config, sha256: sha256)
    }

    /// Builds the image, the target's DTBs and (when the config has any `=m`) the modules
    /// from a verified config, stages the modules, and copies every artifact, the logs and
    /// `kernel.json` into `outputDirectory`. make's output streams to `build.log`.
    ///
    /// A configuration that failed is not built: the record carries its failure.
    /// Throws only when the host fails; a failing build is a record with a `failure`.
    public static func build(_ plan: KernelPlan, inputs: KernelBuildInputs, configuration: KernelConfiguration,
                             source: ResolvedSource, outputDirectory: String, timeout: Duration = .seconds(3 * 3600),
                             wrap: @Sendable (Command) -> Command = { $0 }) async throws(KmatrixError) -> KernelBuildRecord {
        try prepareDirectory(outputDirectory)
        let log = "\(plan.buildDirectory)/build.log"
        var record = KernelBuildRecord(
            cell: plan.cell.id, target: plan.cell.target.name, arch: plan.cell.target.kernel.arch, toolchain: inputs.toolchain,
            sourceSHA256: source.sha256, sourceTree: plan.sourceTree, buildDirectory: plan.buildDirectory,
            configFingerprint: configuration.inputsFingerprint, buildFingerprint: inputs.fingerprint,
            configSHA256: configuration.configSHA256, jobs: plan.jobs, ccache: plan.ccache != nil,
            configureSeconds: configuration.seconds, buildSeconds: 0, buildCPUSeconds: 0, imageBytes: nil,
            warnings: 0, errors: 0, modules: inputs.modules, mismatches: configuration.mismatches,
            artifacts: KernelArtifacts(directory: outputDirectory), failure: configuration.failure)

        func finish() throws(KmatrixError) -> KernelBuildRecord {
            record.artifacts.configLog = try publish(configuration.log, to: outputDirectory, as: "config.log")
            record.artifacts.config = try publish(plan.configPath, to: outputDirectory, as: "config")
            record.artifacts.buildLog = try publish(log, to: outputDirectory, as: "build.log")
            try write(record, to: "\(outputDirectory)/kernel.json")
            return record
        }

        try removeIfPresent(log)
        for stale in ["build.log", "kernel.json", "config", "config.log", "vmlinux", "System.map", "modules", "dtbs",
                      (plan.cell.target.kernel.image.paths[0] as NSString).lastPathComponent] {
            try removeIfPresent("\(outputDirectory)/\(stale)")
        }
        guard configuration.succeeded else { return try finish() }

        // The config on disk must be the one that was verified.
        let onDisk = try? SHA256.hex(fileAt: plan.configPath)
        guard let onDisk, onDisk == configuration.configSHA256 else {
            record.failure = KernelFailure(.configFailed, "\(plan.configPath) changed since it was configured and verified; configure again")
            return try finish()
        }

        // Kconfig first, alone: a config it rewrites (the compiler or another tool it
        // probes is not what the config was made with) is stale, found in seconds rather
        // than after a whole build.
        let commands = plan.buildCommands(modules: inputs.modules)
        let sync = try await runLogged(commands[0], log: log, timeout: .seconds(600), wrap: wrap)
        if sync.succeeded, (try? SHA256.hex(fileAt: plan.configPath)) != configuration.configSHA256 {
            record.staleConfig = true
            record.failure = KernelFailure(.configFailed, "make syncconfig rewrote \(plan.configPath): the verified config is stale for this toolchain; configure again")
            return try finish()
        }

        let start = ContinuousClock.now
        let cpuBefore = childrenCPUSeconds()
        let staging = plan.modulesStaging
        if inputs.modules { try removeIfPresent(staging) }
        try removeIfPresent(plan.ccacheStatsLog)
        var failedStep: (Command, Termination)?
        // The jobserver wrapper is how a command runs, not what it is: logs show the make.
        for command in commands.dropFirst() {
            let termination = try await runLogged(command, log: log, timeout: timeout, wrap: wrap)
            if !termination.succeeded { failedStep = (command, termination); break }
        }
        if plan.ccache != nil { record.ccacheStats = CcacheStats.read(plan.ccacheStatsLog) }
        record.buildSeconds = seconds(since: start)
        record.buildCPUSeconds = max(0, childrenCPUSeconds() - cpuBefore)
        let summary = BuildLogSummary.scan(log)
        record.warnings = summary.warnings
        record.errors = summary.errors
        if let (command, termination) = failedStep {
            var excerpt = summary.firstErrors
            if !excerpt.isEmpty { excerpt.append("...") }
            excerpt += summary.tail
            record.failure = KernelFailure(.buildFailed, "\(commandName(command)) failed (\(termination)); see \(log)", excerpt: excerpt)
            return try finish()
        }
        // make re-runs Kconfig when its environment changed (another compiler version):
        // a kernel built from a config other than the verified one is not what was asked for.
        let afterBuild = try? SHA256.hex(fileAt: plan.configPath)
        guard afterBuild == configuration.configSHA256 else {
            record.staleConfig = true
            record.failure = KernelFailure(.configFailed, "make rewrote \(plan.configPath) during the build, so the kernel was not built from the verified config; configure again")
            return try finish()
        }

        // Every artifact the target names must exist; each may have moved between kernel
        // versions, so every candidate path is tried.
        let kernel = plan.cell.target.kernel
        var missing: [String] = []
        func find(_ paths: [String]) -> String? {
            paths.map { "\(plan.buildDirectory)/\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
        }
        if let image = find(kernel.image.paths) {
            record.artifacts.image = try await publishOffThePool(image, to: outputDirectory, as: kernel.image.fileName)
            record.imageBytes = fileSize(image)
        } else {
            missing.append("image \(kernel.image.paths.joined(separator: " or "))")
        }
        record.artifacts.vmlinux = try await publishOffThePool("\(plan.buildDirectory)/vmlinux", to: outputDirectory, as: "vmlinux")
        if record.artifacts.vmlinux == nil { missing.append("vmlinux") }
        record.artifacts.systemMap = try publish("\(plan.buildDirectory)/System.map", to: outputDirectory, as: "System.map")
        if record.artifacts.systemMap == nil { missing.append("System.map") }
        for dtb in kernel.dtbs {
            if let path = find(dtb.paths) {
                record.artifacts.dtbs[dtb.fileName] = try publish(path, to: "\(outputDirectory)/dtbs", as: dtb.fileName)
            } else {
                missing.append("DTB \(dtb.paths.joined(separator: " or "))")
            }
        }
        if inputs.modules {
            record.artifacts.modules = try await publishOffThePool("\(staging)/lib/modules", to: outputDirectory, as: "modules")
            if record.artifacts.modules == nil { missing.append("staged modules \(staging)/lib/modules") }
        }
        if !missing.isEmpty {
            record.failure = KernelFailure(.artifactMissing, "make succeeded but the build tree lacks what \(plan.cell.target.file) names",
                                           excerpt: missing)
        }
        return try finish()
    }

    // MARK: - Helpers

    /// Runs one command with its output appended to `log`, after a line showing it.
    static func runLogged(_ command: Command, log: String, timeout: Duration,
                          wrap: @Sendable (Command) -> Command = { $0 }) async throws(KmatrixError) -> Termination {
        appendLine(log, "$ \(command)")
        let termination = try await ProcessRunner.run(wrap(command), logPath: log, timeout: timeout)
        if !termination.succeeded { appendLine(log, "kmatrix: \(commandName(command)) ended with \(termination)") }
        return termination
    }

    static func commandName(_ command: Command) -> String {
        // The scheduler's jobserver runs make through a `sh -c` wrapper: name the make.
        let argv = command.argv.firstIndex { ($0 as NSString).lastPathComponent == "make" }.map { Array(command.argv[$0...]) } ?? command.argv
        let executable = (argv[0] as NSString).lastPathComponent
        guard executable == "make" else { return executable }
        let targets = argv.dropFirst().filter { !$0.contains("=") && !$0.hasPrefix("-") && !$0.hasPrefix("/") }
        return "make \(targets.joined(separator: " "))"
    }

    static func appendLine(_ path: String, _ text: String) {
        guard let data = (text + "\n").data(using: .utf8) else { return }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: data)
    }

    static func prepareDirectory(_ path: String) throws(KmatrixError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(path)", underlying: error)
        }
    }

    static func removeIfPresent(_ path: String) throws(KmatrixError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) || isSymlink(path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw .host("cannot remove \(path)", underlying: error)
        }
    }

    static func isSymlink(_ path: String) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
    }

    /// `publish` on a thread of its own: vmlinux and the modules run to many megabytes, and
    /// the cooperative pool (one thread per core) also runs the boot watchers.
    static func publishOffThePool(_ path: String, to directory: String, as name: String) async throws(KmatrixError) -> String? {
        try await Blocking.run { () throws(KmatrixError) -> String? in try publish(path, to: directory, as: name) }
    }

    /// Copies a file or folder into `directory` under `name`; `nil` when it does not exist.
    static func publish(_ path: String, to directory: String, as name: String) throws(KmatrixError) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        try prepareDirectory(directory)
        let destination = "\(directory)/\(name)"
        try removeIfPresent(destination)
        do { try FileManager.default.copyItem(atPath: path, toPath: destination) } catch {
            throw .host("cannot copy \(path) to \(destination)", underlying: error)
        }
        return destination
    }

    static func write(_ record: KernelBuildRecord, to path: String) throws(KmatrixError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try encoder.encode(record).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .host("cannot write \(path)", underlying: error)
        }
    }

    static func fileSize(_ path: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }

    /// User + system CPU seconds of every child this process has reaped so far.
    static func childrenCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage) == 0 else { return 0 }
        func value(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return value(usage.ru_utime) + value(usage.ru_stime)
    }
}
