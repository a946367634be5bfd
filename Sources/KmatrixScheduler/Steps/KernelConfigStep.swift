import Foundation
import KmatrixCore
import KmatrixKernel

/// `kernel.config`: the base config, one generated fragment with every requested option
/// (target, ABI, root device, profile and its fragments, matrix options and fragments,
/// cell), `merge_config.sh`, `olddefconfig`, then every requested option checked in the
/// final `.config`. Cached by the fingerprint of `KernelConfigInputs`; a rejected config
/// is never cached. The base make target's own `.config` is cached too, by the inputs
/// without the options (`baseFingerprint`): a cell whose options changed, or another root
/// device of the same target, starts from it instead of running Kconfig for the base again.
struct KernelConfigStep: Step {
    let cell: Cell

    var id: StepID { StepID(.kernelConfig, cell.id) }
    var dependencies: [StepID] { [SourceStep.kernelID(cell)] }

    /// The inputs with the compiler probed; for `plan` on a machine without the compiler,
    /// the same inputs with its version unknown (then no key).
    func inputs(_ context: StepContext, probe: Bool) async throws(KmatrixError) -> KernelConfigInputs {
        guard let source = context.kernelSource(cell) else { throw .host("the kernel source is missing (see kmatrix doctor)") }
        let toolchain: ToolchainIdentity
        if probe {
            toolchain = try await context.toolchainIdentity(cell)
        } else {
            toolchain = ToolchainIdentity(name: cell.toolchain.name, compiler: cell.toolchain.compilerPath(for: cell.toolchainArch), version: "not probed")
        }
        return try KernelConfigInputs.assemble(cell: cell, project: context.project, source: source, toolchain: toolchain)
    }

    /// Where base configs are kept (`KernelConfigInputs.baseFingerprint`): the `.config` of
    /// the base make target, before any option is merged.
    static let baseKind = "kernel.base-config"

    /// The base config made earlier for these inputs, when the cache has it.
    func cachedBase(_ context: StepContext, _ inputs: KernelConfigInputs) -> String? {
        guard let key = inputs.baseFingerprint, let entry = context.lookup(kind: Self.baseKind, key) else { return nil }
        let path = "\(entry)/config"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The verified result for these inputs when the cache has it.
    func cached(_ context: StepContext, _ inputs: KernelConfigInputs) -> ConfigOutput? {
        guard let entry = context.lookup(.kernelConfig, inputs.fingerprint),
              let configuration = readJSON(KernelConfiguration.self, "\(entry)/configuration.json") else { return nil }
        return ConfigOutput(inputs: inputs, configuration: configuration, configFile: "\(entry)/config")
    }

    /// How a cached config was made (`made.json` in its entry): from the base make target,
    /// or from a kept base config. Made from a kept base, the payload is byte-identical to one
    /// made from nothing (the base's key holds every input of the base make target).
    struct Made: Codable {
        var fromKeptBase: Bool
    }

    /// The commands a hit reports, in `plan` and in `run` alike: those that made the cached
    /// config, with this cache's paths (the kept base, when it made it and is still here);
    /// an entry from before `made.json` was kept reports how it is made from nothing.
    func commandsOfCachedConfig(_ context: StepContext, _ inputs: KernelConfigInputs, kernel: KernelPlan) -> [Command] {
        let made = context.lookup(.kernelConfig, inputs.fingerprint).flatMap { readJSON(Made.self, "\($0)/made.json") }
        return kernel.configureCommands(base: inputs.base, cachedBase: made?.fromKeptBase == true ? cachedBase(context, inputs) : nil)
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        let kernel = context.kernelPlan(cell, tree: context.sourceTree(context.kernelSource(cell), name: "linux"))
        var probed = true
        var inputs = try? await self.inputs(context, probe: true)
        if inputs == nil {
            probed = false
            inputs = try? await self.inputs(context, probe: false)
        }
        guard let inputs else {
            return planned(note: "the kernel source is missing: nothing to configure (see kmatrix doctor)", commands: [])
        }
        let options = inputs.requested.map(\.option.configLine)
        let note = "write \(kernel.fragmentPath) (\(options.count) options: \(options.joined(separator: " "))), merge, then check every requested option in .config"
            + (probed ? "" : "; \(inputs.toolchain.compiler) is not installed, so the cache key is not known")
        // A cached config shows the commands that made it (as `run` reports a hit), so a base
        // kept in the meantime by another cell does not make plan and run differ.
        let hit = probed && cached(context, inputs) != nil
        let commands = hit ? commandsOfCachedConfig(context, inputs, kernel: kernel)
            : kernel.configureCommands(base: inputs.base, cachedBase: probed ? cachedBase(context, inputs) : nil)
        return planned(note: note, commands: commands, key: probed ? inputs.fingerprint : nil, cached: hit)
    }

    func run(_ context: StepContext, _ stepInputs: StepInputs) async -> StepOutcome {
        let log = context.logPath(id)
        do {
            let tree = try stepInputs.tree(SourceStep.kernelID(cell))
            let inputs = try await self.inputs(context, probe: true)
            let key = inputs.fingerprint
            let kernel = context.kernelPlan(cell, tree: tree)
            if let hit = cached(context, inputs) {
                return .passed("\(hit.configuration.requestedCount) options verified", output: .config(hit), cacheHit: true,
                               commands: commandsOfCachedConfig(context, inputs, kernel: kernel), key: key)
            }
            return try await configure(context, inputs, kernel: kernel, log: log)
        } catch let failure as StepFailure {
            return .failed(failure.failure, failure.message, logPath: log)
        } catch let error as KmatrixError {
            return .host(error, logPath: log)
        } catch {
            return .failed(.infrastructure, "\(error)", logPath: log)
        }
    }

    /// Makes the config, verifies it and publishes it under its inputs' key. The build
    /// step calls it too, once, when make refused a cached config as stale.
    func configure(_ context: StepContext, _ inputs: KernelConfigInputs, kernel: KernelPlan, log: String?) async throws -> StepOutcome {
        let key = inputs.fingerprint
        let base = cachedBase(context, inputs)
        let commands = kernel.configureCommands(base: inputs.base, cachedBase: base)
        var configuration: KernelConfiguration?
        var hostError: KmatrixError?
        let entry = try await context.cache.publish(kind: id.kind.rawValue, key: key, inputs: inputs) { staging in
            do throws(KmatrixError) {
                let made = try await KernelBuild.configure(kernel, inputs: inputs, cachedBase: base) { config in
                    // Kept for the next cell or run with the same base; a failure to keep it costs only time.
                    guard let baseKey = inputs.baseFingerprint else { return }
                    _ = try? await context.cache.publish(kind: Self.baseKind, key: baseKey, inputs: inputs.baseOnly) { staging in
                        (try? FileManager.default.copyItem(atPath: config, toPath: "\(staging)/config")) != nil
                    }
                }
                configuration = made
                copyLog(made.log, to: log)
                guard made.succeeded, (try? FileManager.default.copyItem(atPath: made.configPath, toPath: "\(staging)/config")) != nil else { return false }
                return writeJSON(made, "\(staging)/configuration.json") && writeJSON(Made(fromKeptBase: base != nil), "\(staging)/made.json")
            } catch {
                hostError = error
                return false
            }
        }
        if let hostError { return .host(hostError, logPath: log, commands: commands) }
        guard let configuration else { return .failed(.infrastructure, "the configure step produced nothing", logPath: log, commands: commands) }
        if let failure = configuration.failure {
            var outcome = StepOutcome.failed(failure.kind, failure.message, logPath: log, commands: commands, excerpt: failure.excerpt)
            outcome.output = .config(ConfigOutput(inputs: inputs, configuration: configuration, configFile: configuration.configPath))
            return outcome
        }
        guard let entry else { return .failed(.infrastructure, "could not cache the verified config", logPath: log, commands: commands) }
        let output = ConfigOutput(inputs: inputs, configuration: configuration, configFile: "\(entry)/config")
        return .passed("\(configuration.requestedCount) options verified", output: .config(output), logPath: log, commands: commands, key: key)
    }
}
