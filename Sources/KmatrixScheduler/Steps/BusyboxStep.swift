import Foundation
import KmatrixCore
import KmatrixUserspace

/// `busybox.build`: busybox's base config (`defconfig` unless the matrix says) + static + kmatrix's lines, built out of tree and
/// installed, once per (Debian architecture, userspace toolchain) and shared by every cell
/// that needs it. The install tree is published in the cache under its inputs hash
/// (source, compiler version, options), so it travels with the cache like a kernel.
struct BusyboxStep: Step {
    /// Any cell of the ABI and toolchain: the step reads only those.
    let cell: Cell
    let project: Project

    static func scope(_ cell: Cell, project: Project) -> String {
        "\(cell.target.userspace.debianArch)-\(BusyboxPlan.userspaceToolchain(for: cell.toolchain, in: project).name)"
    }

    static func id(_ cell: Cell, project: Project) -> StepID { StepID(.busyboxBuild, scope(cell, project: project)) }

    var id: StepID { Self.id(cell, project: project) }
    var dependencies: [StepID] { [SourceStep.busyboxID] }
    var builder: Toolchain { BusyboxPlan.userspaceToolchain(for: cell.toolchain, in: project) }

    func key(_ context: StepContext, _ plan: BusyboxPlan) async -> String? {
        guard let source = context.busyboxSource else { return nil }
        guard let version = try? await context.compilers.version(plan.compiler, arguments: plan.versionArguments, packages: []),
              let libc = await BusyboxBuilder.libcIdentity(plan.compiler) else { return nil }
        return BusyboxBuilder.inputsHash(plan, sourceSha256: source.sha256, compilerVersion: version, libc: libc)
    }

    /// The published install and its record, when the cache (or the upstream one) has them.
    func cached(_ context: StepContext, _ key: String) -> BusyboxBuildRecord? {
        guard let entry = context.lookup(.busyboxBuild, key),
              var record = readJSON(BusyboxBuildRecord.self, "\(entry)/busybox.json"),
              FileManager.default.isExecutableFile(atPath: "\(entry)/install/bin/busybox") else { return nil }
        record.installDirectory = "\(entry)/install"
        record.binary = "\(entry)/install/bin/busybox"
        record.reused = true
        return record
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        let plan = context.busyboxPlan(cell, tree: context.sourceTree(context.busyboxSource, name: "busybox"))
        let key = await key(context, plan)
        let cached = key.map { context.lookup(.busyboxBuild, $0) != nil } ?? false
        return planned(note: "shared by every \(cell.target.userspace.debianArch) cell built with \(builder.name); .config gets \(plan.configLines.joined(separator: ", ")); the compile joins the jobserver",
                       commands: plan.commands(), key: key, cached: cached)
    }

    func run(_ context: StepContext, _ inputs: StepInputs) async -> StepOutcome {
        let log = context.logPath(id)
        let tree: String
        do throws(StepFailure) { tree = try inputs.tree(SourceStep.busyboxID) } catch {
            return .failed(error.failure, error.message, logPath: log)
        }
        let plan = context.busyboxPlan(cell, tree: tree)
        let commands = plan.commands()
        do {
            if let key = await key(context, plan), let hit = cached(context, key) {
                return .passed("\(hit.binary) (\(hit.elf.machine), static)", output: .busybox(hit), cacheHit: true,
                               commands: commands, key: key)
            }
            var record = try await context.inPool { () async throws(KmatrixError) -> BusyboxBuildRecord in try await BusyboxBuilder.build(plan, debianArch: cell.target.userspace.debianArch, toolchain: builder.name,
                                                        expect: cell.target.userspace, sourceSha256: context.busyboxSource?.sha256 ?? "",
                                                        logPath: log, libcPackage: builder.architectures[cell.target.userspace.debianArch]?.libcPackage,
                                                        settings: BusyboxBuildSettings(wrap: context.wrap)) }
            let key = record.inputsHash
            let final = context.cache.entry(kind: id.kind.rawValue, key: key)
            let built = record
            let entry = try await context.cache.publish(kind: id.kind.rawValue, key: key, inputs: ["inputs": key] as [String: String]) { staging in
                var published = built
                published.installDirectory = "\(final)/install"
                published.binary = "\(final)/install/bin/busybox"
                return (try? FileManager.default.copyItem(atPath: built.installDirectory, toPath: "\(staging)/install")) != nil
                    && writeJSON(published, "\(staging)/busybox.json")
            }
            guard entry == final, let published = cached(context, key) else {
                return .failed(.infrastructure, "busybox was built but could not be published to \(final)", logPath: log, commands: commands)
            }
            record = published
            return .passed("\(record.binary) (\(record.elf.machine), static)", output: .busybox(record), cacheHit: false,
                           logPath: log, commands: commands, key: key)
        } catch {
            let lines = error.message.split(separator: "\n").map(String.init)
            let summary = lines.first ?? error.message
            switch error.kind {
            case .cellFailure, .badInput:
                let (kind, full) = context.classify(.busyboxBuildFailed, path: plan.buildDirectory, text: error.message)
                return .failed(kind, full.map { "\($0): \(summary)" } ?? summary, logPath: log, commands: commands, excerpt: lines)
            case .hostFailure, .interrupted:
                var outcome = StepOutcome.host(error, logPath: log, commands: commands)
                outcome.excerpt = lines
                return outcome
            }
        }
    }
}
