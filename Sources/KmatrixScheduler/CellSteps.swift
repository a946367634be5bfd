import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixDeviceTree
import KmatrixKernel
import KmatrixUserspace

/// Everything the steps of one run share, and the steps themselves.
struct StepContext: Sendable {
    let project: Project
    let workspace: Workspace
    let settings: RunSettings
    let runDirectory: String
    let kernelSource: ResolvedSource
    let busyboxSource: ResolvedSource
    let jobserver: Jobserver
    let cache: ArtifactCache
    let accelerators: AcceleratorChoice
    let ccache: String?
    let records: RecordStore

    /// Bumped when what a step writes changes, so old cache entries are not reused.
    static let rootfsFormat = "kmatrix-rootfs-2"

    func logPath(_ id: StepID) -> String {
        let dir = "\(runDirectory)/logs/\(id.kind)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return "\(dir)/\(id.scope.replacingOccurrences(of: "/", with: "_")).log"
    }

    func busyboxScope(_ cell: Cell) -> String {
        "\(cell.target.userspace.debianArch)-\(cell.toolchain.userspaceToolchain ?? cell.toolchain.name)"
    }

    /// Adds the cell's steps (shared ones once) and returns them in the cell's order.
    func addSteps(for cell: Cell, to graph: inout StepGraph) -> [StepID] {
        let kernelSourceID = StepID("source.kernel", StepID.kernelSourceScope)
        let busyboxSourceID = StepID("source.busybox", StepID.busyboxSourceScope)
        let configID = StepID("kernel.config", cell.id)
        let buildID = StepID("kernel.build", cell.id)
        let busyboxID = StepID("busybox.build", busyboxScope(cell))
        let rootfsID = StepID("rootfs", cell.id)
        let dtbID = StepID("dtb.check", cell.id)
        let bootID = StepID("boot", cell.id)

        graph.add(StepNode(kernelSourceID) { _ in await unpackKernel() })
        graph.add(StepNode(busyboxSourceID) { _ in await unpackBusybox() })
        graph.add(StepNode(configID, after: [kernelSourceID]) { inputs in
            await configure(cell, tree: inputs[kernelSourceID]!.outputs["tree"]!, id: configID)
        })
        graph.add(StepNode(buildID, after: [configID, kernelSourceID]) { inputs in
            await buildKernel(cell, tree: inputs[kernelSourceID]!.outputs["tree"]!, id: buildID)
        })
        graph.add(StepNode(busyboxID, after: [busyboxSourceID]) { inputs in
            await buildBusybox(cell, tree: inputs[busyboxSourceID]!.outputs["tree"]!, id: busyboxID)
        })
        graph.add(StepNode(rootfsID, after: [busyboxID, buildID]) { inputs in
            await assembleRootfs(cell, busybox: inputs[busyboxID]!, kernel: inputs[buildID]!, id: rootfsID)
        })
        graph.add(StepNode(dtbID, after: [buildID]) { inputs in
            await checkDeviceTree(cell, kernel: inputs[buildID]!, id: dtbID)
        })
        var steps = [kernelSourceID, configID, buildID, busyboxSourceID, busyboxID, rootfsID, dtbID]
        if settings.boot {
            // With --boot-anyway the boot waits for the check but does not need it to pass.
            let bootAfter = settings.bootAnyway ? [buildID, rootfsID] : [buildID, rootfsID, dtbID]
            graph.add(StepNode(bootID, after: bootAfter) { inputs in
                await boot(cell, kernel: inputs[buildID]!, rootfs: inputs[rootfsID]!, id: bootID)
            })
            steps.append(bootID)
        }
        return steps
    }

    // MARK: Sources

    func unpackKernel() async -> StepOutcome {
        let existed = SourceTree.isComplete(workspace.unpacked("linux", sha256: kernelSource.sha256)) || kernelSource.kind == .tree
        do {
            let tree = try await SourceTree.prepare(kernelSource, workspace: workspace)
            return StepOutcome(status: .passed, cacheHit: existed, summary: existed ? tree : "unpacked \(kernelSource.path) into \(tree)",
                               outputs: ["tree": tree])
        } catch {
            return .failed("infrastructure", error.description)
        }
    }

    func unpackBusybox() async -> StepOutcome {
        let before = FileManager.default.fileExists(atPath: "\(workspace.unpacked("busybox", sha256: busyboxSource.sha256))/Makefile")
        do {
            let tree = try await BusyboxBuilder.prepareSource(busyboxSource, workspace: workspace)
            return StepOutcome(status: .passed, cacheHit: before, summary: tree, outputs: ["tree": tree])
        } catch {
            return .failed("infrastructure", error.description)
        }
    }

    // MARK: Kernel

    /// Kconfig steps run outside the pool (single-threaded, seconds long): a cheap step
    /// never waits behind a compile for a slot. Compiles join the pool.
    func kernelPlan(_ cell: Cell, tree: String, joinPool: Bool) -> KernelPlan {
        var plan = KernelPlan(cell: cell, sourceTree: tree, buildDirectory: workspace.kernelBuild(cell), jobs: nil, ccache: ccache)
        if joinPool { plan.wrap = { [jobserver] in jobserver.wrap($0) } }
        return plan
    }

    func configInputs(_ cell: Cell) async throws(KmatrixError) -> KernelConfigInputs {
        let toolchain = try await ToolchainIdentity.probe(cell)
        return try KernelConfigInputs.assemble(cell: cell, project: project, source: kernelSource, toolchain: toolchain)
    }

    /// Cached by the fingerprint of everything that defines the config: source, toolchain
    /// and its version, base, every requested option. A rejected config is never cached.
    func configure(_ cell: Cell, tree: String, id: StepID) async -> StepOutcome {
        do {
            let inputs = try await configInputs(cell)
            let key = inputs.fingerprint
            if let entry = cache.lookup(kind: id.kind, key: key),
               let configuration = readJSON(KernelConfiguration.self, "\(entry)/configuration.json") {
                await records.set(configuration: configuration, for: cell.id)
                return StepOutcome(status: .passed, cacheHit: true, summary: "\(configuration.requestedCount) options verified",
                                   outputs: ["config": "\(entry)/config", "key": key])
            }
            let plan = kernelPlan(cell, tree: tree, joinPool: false)
            var configuration: KernelConfiguration?
            var hostError: KmatrixError?
            let entry = try await cache.publish(kind: id.kind, key: key, inputs: inputs) { staging in
                let made: KernelConfiguration
                do throws(KmatrixError) { made = try await KernelBuild.configure(plan, inputs: inputs) } catch {
                    hostError = error
                    return false
                }
                configuration = made
                copy(made.log, to: logPath(id))
                guard made.succeeded, (try? FileManager.default.copyItem(atPath: made.configPath, toPath: "\(staging)/config")) != nil else { return false }
                return writeJSON(made, "\(staging)/configuration.json")
            }
            if let hostError { return .failed("infrastructure", hostError.description, logPath: logPath(id)) }
            guard let configuration else { return .failed("infrastructure", "the configure step produced nothing", logPath: logPath(id)) }
            await records.set(configuration: configuration, for: cell.id)
            if let failure = configuration.failure {
                await records.set(excerpt: failure.excerpt, for: id)
                return .failed(failure.kind.rawValue, failure.message, logPath: logPath(id))
            }
            guard let entry else { return .failed("infrastructure", "could not cache the verified config", logPath: logPath(id)) }
            return StepOutcome(status: .passed, summary: "\(configuration.requestedCount) options verified", logPath: logPath(id),
                               outputs: ["config": "\(entry)/config", "key": key])
        } catch {
            return .failed("infrastructure", error.description, logPath: logPath(id))
        }
    }

    /// Cached by the build fingerprint (config sha256, toolchain, targets). The cell's
    /// build directory stays between runs, so a changed config rebuilds incrementally.
    func buildKernel(_ cell: Cell, tree: String, id: StepID) async -> StepOutcome {
        do {
            let inputs = try await configInputs(cell)
            guard var configuration = await records.configurations[cell.id] else {
                return .failed("infrastructure", "no verified configuration for \(cell.id)")
            }
            let buildInputs = KernelBuildInputs(config: inputs, configuration: configuration, target: cell.target)
            let key = buildInputs.fingerprint
            if let entry = cache.lookup(kind: id.kind, key: key), let record = readJSON(KernelBuildRecord.self, "\(entry)/kernel.json") {
                await records.set(kernel: record, for: cell.id)
                return StepOutcome(status: .passed, cacheHit: true, summary: "cached \(record.artifacts.image ?? "")",
                                   outputs: kernelOutputs(record))
            }
            let plan = kernelPlan(cell, tree: tree, joinPool: true)
            // The verified config may come from the cache: put it where make reads it.
            let cachedConfig = try await configEntryConfig(cell)
            if let cachedConfig, (try? SHA256.hex(fileAt: plan.configPath)) != configuration.configSHA256 {
                try? FileManager.default.removeItem(atPath: plan.configPath)
                do {
                    try FileManager.default.createDirectory(atPath: plan.buildDirectory, withIntermediateDirectories: true)
                    try FileManager.default.copyItem(atPath: cachedConfig, toPath: plan.configPath)
                } catch {
                    return .failed("infrastructure", "cannot restore the verified config into \(plan.buildDirectory): \(error)")
                }
            }
            configuration.configPath = plan.configPath
            let final = cache.entry(kind: id.kind, key: key)
            var record: KernelBuildRecord?
            var hostError: KmatrixError?
            _ = try await cache.publish(kind: id.kind, key: key, inputs: buildInputs) { staging in
                var made: KernelBuildRecord
                do throws(KmatrixError) {
                    made = try await KernelBuild.build(plan, inputs: buildInputs, configuration: configuration,
                                                       source: kernelSource, outputDirectory: staging)
                } catch {
                    hostError = error
                    return false
                }
                if let log = made.artifacts.buildLog { copy(log, to: logPath(id)) }
                // The record's paths must name the published entry, not the staging folder.
                made.artifacts = relocate(made.artifacts, from: staging, to: final)
                record = made
                return made.succeeded && writeJSON(made, "\(staging)/kernel.json")
            }
            if let hostError { return .failed("infrastructure", hostError.description, logPath: logPath(id)) }
            guard let record else { return .failed("infrastructure", "the kernel build step produced nothing", logPath: logPath(id)) }
            await records.set(kernel: record, for: cell.id)
            if let failure = record.failure {
                await records.set(excerpt: failure.excerpt, for: id)
                return .failed(failure.kind.rawValue, failure.message, logPath: logPath(id))
            }
            return StepOutcome(status: .passed, summary: "\(record.artifacts.image.map { ($0 as NSString).lastPathComponent } ?? "image") \(record.imageBytes ?? 0) bytes, \(record.warnings) warnings",
                               logPath: logPath(id), outputs: kernelOutputs(record))
        } catch {
            return .failed("infrastructure", error.description, logPath: logPath(id))
        }
    }

    func configEntryConfig(_ cell: Cell) async throws(KmatrixError) -> String? {
        let inputs = try await configInputs(cell)
        return cache.lookup(kind: "kernel.config", key: inputs.fingerprint).map { "\($0)/config" }
    }

    func kernelOutputs(_ record: KernelBuildRecord) -> [String: String] {
        var outputs: [String: String] = [:]
        outputs["image"] = record.artifacts.image
        outputs["vmlinux"] = record.artifacts.vmlinux
        outputs["modules"] = record.artifacts.modules
        for (name, path) in record.artifacts.dtbs { outputs["dtb:\(name)"] = path }
        return outputs
    }

    // MARK: Userspace

    func busyboxPlan(_ cell: Cell, tree: String) -> BusyboxPlan {
        BusyboxPlan(target: cell.target, toolchain: cell.toolchain, project: project, workspace: workspace,
                    sourceTree: tree, jobs: settings.jobs)
    }

    /// Shared by every cell of one ABI and toolchain; the builder reuses its install while
    /// the inputs hash (source, compiler version, options) is unchanged.
    func buildBusybox(_ cell: Cell, tree: String, id: StepID) async -> StepOutcome {
        let plan = busyboxPlan(cell, tree: tree)
        let builder = BusyboxPlan.userspaceToolchain(for: cell.toolchain, in: project)
        do {
            let record = try await BusyboxBuilder.build(plan, debianArch: cell.target.userspace.debianArch, toolchain: builder.name,
                                                        expect: cell.target.userspace, sourceSha256: busyboxSource.sha256,
                                                        logPath: logPath(id),
                                                        settings: BusyboxBuildSettings(wrap: { [jobserver] in jobserver.wrap($0) }))
            await records.set(busybox: record, for: id.scope)
            return StepOutcome(status: .passed, cacheHit: record.reused,
                               summary: "\(record.binary) (\(record.elf.machine), static)", logPath: logPath(id),
                               outputs: ["install": record.installDirectory, "key": record.inputsHash])
        } catch {
            await records.set(excerpt: error.message.split(separator: "\n").map(String.init), for: id)
            return .failed(error.kind == .hostFailure && error.message.contains("failed:") ? "busybox-build-failed" : "infrastructure",
                           error.message.split(separator: "\n").first.map(String.init) ?? error.message, logPath: logPath(id))
        }
    }

    struct RootfsInputs: Encodable {
        var format = StepContext.rootfsFormat
        var busybox: String
        var kind: String
        var filesystem: String?
        var console: String
        var modules: String?
    }

    /// Cached by the busybox build's inputs, the root device and the staged modules.
    func assembleRootfs(_ cell: Cell, busybox: StepOutcome, kernel: StepOutcome, id: StepID) async -> StepOutcome {
        let kind = cell.rootDevice.kind
        let modulesStage = kernel.outputs["modules"].map { ($0 as NSString).deletingLastPathComponent }
        var modulesKey: String?
        if let modules = kernel.outputs["modules"] { modulesKey = SHA256.hex(treeListing(modules)) }
        let inputs = RootfsInputs(busybox: busybox.outputs["key"] ?? "", kind: kind.rawValue, filesystem: cell.rootDevice.filesystem,
                                  console: cell.target.console.device, modules: modulesKey)
        guard let key = try? ArtifactCache.key(inputs) else { return .failed(FailureClass.infrastructure.rawValue, "cannot encode the rootfs inputs for their cache key") }
        let fileName = kind == .initramfs ? "initramfs.cpio.gz" : "rootfs.\(cell.rootDevice.filesystem ?? "ext2")"
        if let entry = cache.lookup(kind: id.kind, key: key) {
            linkIntoImages(cell, "\(entry)/\(fileName)", fileName)
            await records.set(image: "\(entry)/\(fileName)", for: cell.id)
            return StepOutcome(status: .passed, cacheHit: true, summary: "\(entry)/\(fileName)", outputs: ["image": "\(entry)/\(fileName)"])
        }
        let final = cache.entry(kind: id.kind, key: key)
        var failure: String?
        do {
            let modules: StagedModules? = try modulesStage.flatMap { stage throws(KmatrixError) in try StagedModules.find(stage: stage) }
            let options = RootfsOptions(busyboxInstall: busybox.outputs["install"]!, rootDevice: kind,
                                        console: cell.target.console.device, modules: modules)
            let tree = try Rootfs.assemble(options)
            _ = try await cache.publish(kind: id.kind, key: key, inputs: inputs) { staging in
                do {
                    if kind == .initramfs {
                        _ = try InitramfsWriter.write(tree, to: "\(staging)/\(fileName)")
                    } else {
                        // Disk images get a power-of-two size: QEMU refuses any other SD card
                        // ("SD card size has to be a power of 2"), and virtio does not mind.
                        let size = kind == .disk ? powerOfTwoKiB(FilesystemImage.suggestedSizeKiB(tree)) : nil
                        _ = try await FilesystemImage.make(tree, filesystem: cell.rootDevice.filesystem ?? "ext2",
                                                           output: "\(staging)/\(fileName)", directory: "\(staging)/tree",
                                                           sizeKiB: size, logPath: logPath(id))
                        try? FileManager.default.removeItem(atPath: "\(staging)/tree")
                    }
                    return true
                } catch {
                    failure = "\(error)"
                    return false
                }
            }
        } catch {
            failure = error.description
        }
        if let failure { return .failed("rootfs-failed", failure, logPath: logPath(id)) }
        linkIntoImages(cell, "\(final)/\(fileName)", fileName)
        await records.set(image: "\(final)/\(fileName)", for: cell.id)
        return StepOutcome(status: .passed, summary: "\(final)/\(fileName)", outputs: ["image": "\(final)/\(fileName)"])
    }

    /// `kmatrix boot`, `shell` and `boot --gdb` look in the cell's images folder: point it
    /// at the cached image (a symlink, replaced atomically).
    func linkIntoImages(_ cell: Cell, _ image: String, _ fileName: String) {
        let folder = workspace.images(cell)
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = "\(folder)/.\(fileName).\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        guard (try? FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: image)) != nil else { return }
        rename(temporary, "\(folder)/\(fileName)")
    }

    // MARK: Device tree and boot

    func invocation(_ cell: Cell, kernel: StepOutcome, image: String?) -> QemuInvocation {
        var dtb: String?
        if cell.target.deviceTree.source == .build, let name = cell.target.kernel.dtbs.first?.fileName {
            dtb = kernel.outputs["dtb:\(name)"]
        }
        let kind = cell.rootDevice.kind
        var invocation = QemuInvocation(target: cell.target, rootDevice: cell.rootDevice, kernel: kernel.outputs["image"] ?? "",
                                        dtb: dtb, initrd: kind == .disk ? nil : image, disk: kind == .disk ? image : nil)
        invocation.earlycon = settings.earlycon
        if kind == .initrd, let image, let bytes = fileSize(image), bytes > 4096 * 1024 {
            // The RAM disk defaults to 4 MiB (CONFIG_BLK_DEV_RAM_SIZE); a bigger image needs room.
            invocation.extraAppend.append("ramdisk_size=\((bytes + 1023) / 1024 + 1024)")
        }
        return invocation
    }

    /// Not cached: it takes milliseconds, and its verdict is part of every run's story.
    func checkDeviceTree(_ cell: Cell, kernel: StepOutcome, id: StepID) async -> StepOutcome {
        let target = cell.target
        let dtb: String
        switch target.deviceTree.source {
        case .none:
            return StepOutcome(status: .passed, summary: "no device tree on \(target.name)")
        case .build:
            guard let name = target.kernel.dtbs.first?.fileName, let path = kernel.outputs["dtb:\(name)"] else {
                return .failed("dtb-check-failed", "the kernel build produced no \(target.kernel.dtbs.first?.fileName ?? "DTB")")
            }
            dtb = path
        case .qemu:
            dtb = "\(runDirectory)/dtbs/\(cell.id.replacingOccurrences(of: "/", with: "_")).dtb"
            try? FileManager.default.createDirectory(atPath: "\(runDirectory)/dtbs", withIntermediateDirectories: true)
            let dump = invocation(cell, kernel: kernel, image: nil).dumpDTBCommand(to: dtb)
            do {
                let output = try await ProcessRunner.capture(dump, timeout: .seconds(60))
                guard output.termination.succeeded, FileManager.default.fileExists(atPath: dtb) else {
                    return .failed("infrastructure", "QEMU did not dump its DTB (\(output.termination)): \(output.standardError.prefix(300))")
                }
            } catch {
                return .failed("infrastructure", error.description)
            }
        }
        var compatibles: Set<String>?
        var kernelNote = ""
        if let vmlinux = kernel.outputs["vmlinux"] {
            do { compatibles = try KernelCompatibles.load(vmlinux: vmlinux) } catch { kernelNote = " (driver checks skipped: \(error.message))" }
        }
        let report = DeviceTreeCheck.run(dtb: dtb, target: target, kernelCompatibles: compatibles, kernel: kernel.outputs["vmlinux"])
        try? Data(report.text.utf8).write(to: URL(fileURLWithPath: logPath(id)))
        await records.set(deviceTree: report, for: cell.id)
        let summary = "\((dtb as NSString).lastPathComponent): \(report.errors.count) errors, \(report.warnings.count) warnings\(kernelNote)"
        guard report.passed else {
            await records.set(excerpt: report.errors.map(\.text), for: id)
            return .failed("dtb-check-failed", summary, logPath: logPath(id))
        }
        return StepOutcome(status: .passed, summary: summary, logPath: logPath(id), outputs: ["dtb": dtb])
    }

    /// Never cached: booting is what a run is for. A boot does not wait for a job slot:
    /// it is seconds of one core, and queueing it behind a kernel compile would delay a
    /// cell's verdict by minutes (seen: a riscv64 boot held 4 minutes behind two builds).
    /// The brief oversubscription cannot fake a hang: the boot runner's idle check counts
    /// run-queue wait as busy.
    func boot(_ cell: Cell, kernel: StepOutcome, rootfs: StepOutcome, id: StepID) async -> StepOutcome {
        var invocation = invocation(cell, kernel: kernel, image: rootfs.outputs["image"])
        let choice = await accelerators.choose(for: cell.target)
        invocation.accelerator = choice.accelerator
        let record = await BootRunner.run(invocation, logPath: logPath(id), acceleratorReason: choice.reason)
        await records.set(boot: record, for: cell.id)
        let phases = [("linux", record.phases.linuxVersion), ("init", record.phases.initStarted), ("marker", record.phases.userspace)]
            .compactMap { name, value in value.map { "\(name) \(String(format: "%.2f", $0)) s" } }.joined(separator: ", ")
        guard record.outcome.passed else {
            await records.set(excerpt: record.trace.isEmpty ? record.lastLines : record.trace, for: id)
            return .failed(record.outcome.rawValue, "\(record.reason) [\(phases)]", logPath: logPath(id))
        }
        return StepOutcome(status: .passed, summary: "\(record.accelerator.rawValue): \(phases)", logPath: logPath(id))
    }
}

// MARK: - Small file helpers

/// The smallest power of two KiB that holds `kib` (at least 4 MiB).
func powerOfTwoKiB(_ kib: Int) -> Int {
    var size = 4096
    while size < kib { size *= 2 }
    return size
}

func readJSON<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(T.self, from: data)
}

func writeJSON<T: Encodable>(_ value: T, _ path: String) -> Bool {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value).write(to: URL(fileURLWithPath: path))) != nil
}

func copy(_ source: String, to destination: String) {
    try? FileManager.default.removeItem(atPath: destination)
    try? FileManager.default.copyItem(atPath: source, toPath: destination)
}

func fileSize(_ path: String) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt64
}

/// Paths and sizes of every file under `path`, for hashing a tree of modules.
func treeListing(_ path: String) -> String {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return "" }
    var lines: [String] = []
    while let name = walker.nextObject() as? String { lines.append("\(name) \(fileSize("\(path)/\(name)") ?? 0)") }
    return lines.sorted().joined(separator: "\n")
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
