import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel

/// `kernel.build`: the image, the target's DTBs and any modules from the verified config
/// its parent step hands over, in the cell's `O=` directory (kept between runs, so a
/// changed config rebuilds incrementally). Cached by `KernelBuildInputs`; the image and
/// DTBs are linked into the cell's images folder, where boots and `plan` name them.
struct KernelBuildStep: Step {
    let cell: Cell

    var id: StepID { StepID(.kernelBuild, cell.id) }
    var configID: StepID { StepID(.kernelConfig, cell.id) }
    var dependencies: [StepID] { [configID, SourceStep.kernelID(cell)] }

    func inputs(_ config: ConfigOutput) -> KernelBuildInputs {
        KernelBuildInputs(config: config.inputs, configuration: config.configuration, target: cell.target)
    }

    /// The paths boots use: the cell's images folder, whatever entry they point at.
    static func linkedImage(_ cell: Cell, workspace: Workspace) -> String {
        "\(workspace.images(cell))/\(cell.target.kernel.image.fileName)"
    }

    static func linkedDTB(_ cell: Cell, workspace: Workspace) -> String? {
        cell.target.kernel.dtbs.first.map { "\(workspace.images(cell))/\($0.fileName)" }
    }

    /// The build's record when the cache holds it for the inputs known now (its config cached too).
    func cachedRecord(_ context: StepContext) async -> KernelBuildRecord? {
        guard let config = try? await KernelConfigStep(cell: cell).inputs(context, probe: true),
              let done = KernelConfigStep(cell: cell).cached(context, config),
              let entry = context.lookup(.kernelBuild, inputs(done).fingerprint) else { return nil }
        return cachedKernelRecord(entry)
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        let kernel = context.kernelPlan(cell, tree: context.sourceTree(context.kernelSource(cell), name: "linux"))
        let note = "make joins the run's jobserver (\(context.settings.jobs) slots); artifacts are linked into \(context.workspace.images(cell))"
        let config = try? await KernelConfigStep(cell: cell).inputs(context, probe: true)
        if let config, let done = KernelConfigStep(cell: cell).cached(context, config) {
            let inputs = inputs(done)
            return planned(note: note, commands: kernel.buildCommands(modules: inputs.modules), key: inputs.fingerprint,
                           cached: context.lookup(.kernelBuild, inputs.fingerprint) != nil)
        }
        // Until the config is made, whether modules are built is not known.
        let modules = (config?.requested ?? []).contains { $0.option.value == "m" }
        return planned(note: note + "; modules are built when the final .config has any =m; the key follows from the config",
                       commands: kernel.buildCommands(modules: modules))
    }

    func run(_ context: StepContext, _ stepInputs: StepInputs) async -> StepOutcome {
        let log = context.logPath(id)
        let config: ConfigOutput, tree: String
        do throws(StepFailure) {
            config = try stepInputs.config(configID)
            tree = try stepInputs.tree(SourceStep.kernelID(cell))
        } catch {
            return .failed(error.failure, error.message, logPath: log)
        }
        let first = await build(context, config, tree: tree, log: log)
        guard case .kernel(let record)? = first.output, record.staleConfig == true else { return first }
        // make refused the verified config as stale (something Kconfig reads changed since
        // it was cached): evict it, configure once more, and build from the new one.
        CacheEntryCheck.moveAside(context.cache.entry(kind: StepKind.kernelConfig.rawValue, key: config.inputs.fingerprint))
        let kernel = context.kernelPlan(cell, tree: tree)
        let again: StepOutcome
        do { again = try await KernelConfigStep(cell: cell).configure(context, config.inputs, kernel: kernel, log: log) } catch {
            return .failed(.infrastructure, "configuring again after a stale config: \(error)", logPath: log)
        }
        guard again.status == .passed, case .config(let fresh)? = again.output else { return again }
        var second = await build(context, fresh, tree: tree, log: log)
        second.summary = "config was stale, configured again; " + second.summary
        return second
    }

    /// Builds from `config` and publishes, or serves the build from the cache.
    func build(_ context: StepContext, _ config: ConfigOutput, tree: String, log: String?) async -> StepOutcome {
        let inputs = inputs(config)
        let key = inputs.fingerprint
        let kernel = context.kernelPlan(cell, tree: tree)
        let commands = kernel.buildCommands(modules: inputs.modules)
        if let entry = context.lookup(.kernelBuild, key), let record = cachedKernelRecord(entry) {
            linkArtifacts(record, context)
            return .passed("cached \((record.artifacts.image as NSString?)?.lastPathComponent ?? "image")", output: .kernel(record),
                           cacheHit: true, commands: commands, key: key)
        }
        // The verified config may come from the cache: put it where make reads it.
        var configuration = config.configuration
        if (try? SHA256.hex(fileAt: kernel.configPath)) != configuration.configSHA256 {
            do {
                try? FileManager.default.removeItem(atPath: kernel.configPath)
                try FileManager.default.createDirectory(atPath: kernel.buildDirectory, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: config.configFile, toPath: kernel.configPath)
            } catch {
                return .failed(.infrastructure, "cannot restore the verified config into \(kernel.buildDirectory): \(error)", logPath: log, commands: commands)
            }
        }
        configuration.configPath = kernel.configPath
        let final = context.cache.entry(kind: id.kind.rawValue, key: key)
        var record: KernelBuildRecord?
        var hostError: KmatrixError?
        let source = context.kernelSource(cell) ?? ResolvedSource(kind: .tree, path: tree, sha256: config.inputs.sourceSHA256, bytes: 0)
        let published: String?
        do {
            published = try await context.cache.publish(kind: id.kind.rawValue, key: key, inputs: inputs) { staging in
              await context.inPool {
                do throws(KmatrixError) {
                    var made = try await KernelBuild.build(kernel, inputs: inputs, configuration: configuration, source: source,
                                                           outputDirectory: staging, wrap: context.wrap)
                    if let buildLog = made.artifacts.buildLog { copyLog(buildLog, to: log) }
                    // The record's paths must name the published entry, not the staging folder.
                    made.artifacts = relocate(made.artifacts, from: staging, to: final)
                    record = made
                    return made.succeeded && writeJSON(made, "\(staging)/kernel.json")
                } catch {
                    hostError = error
                    return false
                }
              }
            }
        } catch {
            return .host(error, logPath: log, commands: commands)
        }
        if let hostError { return .host(hostError, logPath: log, commands: commands) }
        guard let record else { return .failed(.infrastructure, "the kernel build step produced nothing", logPath: log, commands: commands) }
        if let failure = record.failure {
            // make dying of a full disk is the host's failure, not the cell's.
            let (kind, full) = context.classify(failure.kind, path: kernel.buildDirectory, text: failure.excerpt.joined(separator: "\n"))
            var outcome = StepOutcome.failed(kind, full.map { "\($0): \(failure.message)" } ?? failure.message, logPath: log,
                                             commands: commands, excerpt: failure.excerpt)
            outcome.output = .kernel(record)
            return outcome
        }
        guard published == final else {
            return .failed(.infrastructure, "the kernel was built but could not be published to \(final)", logPath: log, commands: commands)
        }
        linkArtifacts(record, context)
        let image = (record.artifacts.image as NSString?)?.lastPathComponent ?? "image"
        return .passed("\(image) \(record.imageBytes ?? 0) bytes, \(record.warnings) warnings", output: .kernel(record),
                       logPath: log, commands: commands, key: key)
    }

    func linkArtifacts(_ record: KernelBuildRecord, _ context: StepContext) {
        if let image = record.artifacts.image { context.link(cell, image, as: cell.target.kernel.image.fileName) }
        for (name, path) in record.artifacts.dtbs { context.link(cell, path, as: name) }
    }
}

/// A published build's record with its artifacts where the entry is now: the record names
/// the folder it was published in, and an entry imported from another cache (another
/// machine's, `kmatrix cache import`) lives elsewhere.
func cachedKernelRecord(_ entry: String) -> KernelBuildRecord? {
    guard var record = readJSON(KernelBuildRecord.self, "\(entry)/kernel.json") else { return nil }
    record.artifacts = relocate(record.artifacts, from: record.artifacts.directory, to: entry)
    return record
}

func relocate(_ artifacts: KernelArtifacts, from old: String, to new: String) -> KernelArtifacts {
    func move(_ path: String?) -> String? { path.map { $0.hasPrefix(old) ? new + $0.dropFirst(old.count) : $0 } }
    var out = artifacts
    out.directory = move(out.directory) ?? new
    out.image = move(out.image)
    out.vmlinux = move(out.vmlinux)
    out.systemMap = move(out.systemMap)
    out.config = move(out.config)
    out.modules = move(out.modules)
    out.buildLog = move(out.buildLog)
    out.configLog = move(out.configLog)
    out.dtbs = out.dtbs.mapValues { move($0) ?? $0 }
    return out
}
