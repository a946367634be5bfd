import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixDeviceTree
import KmatrixKernel
import KmatrixUserspace

/// How `kmatrix run` behaves.
public struct RunSettings: Sendable {
    /// Job slots shared by every make.
    public var jobs: Int
    public var boot = true
    /// Boot cells whose DTB check failed (the cell still fails).
    public var bootAnyway = false
    public var earlycon = false
    public var live = false
    public var command: [String] = []

    public init(jobs: Int) { self.jobs = jobs }
}

/// One run of the matrix: plans every selected cell into steps, runs them under one
/// jobserver with the input-keyed cache, and writes the run directory.
public struct MatrixRun: Sendable {
    public let project: Project
    public let cells: [Cell]
    public let workspace: Workspace
    public let settings: RunSettings

    public init(project: Project, cells: [Cell], workspace: Workspace, settings: RunSettings) {
        self.project = project
        self.cells = cells
        self.workspace = workspace
        self.settings = settings
    }

    /// What `execute` hands back: the results and where they were written.
    public struct Finished: Sendable {
        public var results: RunResults
        public var directory: String
        /// Some failure was the host's (a missing tool, a full disk), not a cell's.
        public var hostFailed: Bool
    }

    public func execute() async throws(KmatrixError) -> Finished {
        let lock = try RunLock(directory: workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let started = Date()
        let clock = ContinuousClock.now
        let runID = Self.runID(started)
        let runDirectory = "\(workspace.runs)/\(runID)"
        do {
            try FileManager.default.createDirectory(atPath: "\(runDirectory)/logs", withIntermediateDirectories: true)
        } catch {
            throw .host("cannot create the run directory \(runDirectory)", underlying: error)
        }
        let cpuBefore = Self.cpuSeconds()

        let kernelSource = try SourceResolver.resolve(project.matrix.sources.kernel, what: "kernel", workspace: workspace, file: project.matrix.file)
        let busyboxSource = try SourceResolver.resolve(project.matrix.sources.busybox, what: "busybox", workspace: workspace, file: project.matrix.file)
        let jobserver = try Jobserver(slots: settings.jobs, directory: runDirectory)
        let cache = ArtifactCache(root: workspace.cache)
        cache.sweepStaging()
        let probeKernel = MatrixRun.probeKernel(workspace: workspace, cells: project.cells)
        let accelerators = AcceleratorChoice(probeKernel: probeKernel, cacheFile: AcceleratorChoice.cacheFile(in: workspace))
        let context = StepContext(project: project, workspace: workspace, settings: settings, runDirectory: runDirectory,
                                  kernelSource: kernelSource, busyboxSource: busyboxSource, jobserver: jobserver,
                                  cache: cache, accelerators: accelerators, ccache: ProcessRunner.which("ccache"),
                                  records: RecordStore())
        var graph = StepGraph()
        var cellSteps: [String: [StepID]] = [:]
        for cell in cells { cellSteps[cell.id] = context.addSteps(for: cell, to: &graph) }
        let problems = graph.validate()
        guard problems.isEmpty else { throw .host("kmatrix planned a broken step graph: \(problems.joined(separator: "; "))") }

        let scopes = [StepID.kernelSourceScope, StepID.busyboxSourceScope]
            + Array(Set(cells.map { context.busyboxScope($0) })).sorted() + cells.map(\.id)
        let progress = Progress(scopes: scopes, live: settings.live)
        let redraw = progress.start()
        let outcomes = await withTaskCancellationHandler {
            await graph.run { id, outcome in progress.stepChanged(id, outcome) }
        } onCancel: {}
        let interrupted = Task.isCancelled || outcomes.values.contains { $0.status == .interrupted }

        var cellResults: [CellResult] = []
        var hostFailed = false
        for cell in cells {
            let result = await context.result(for: cell, steps: cellSteps[cell.id]!, outcomes: outcomes)
            if result.outcome == "infrastructure" { hostFailed = true }
            progress.cellFinished(cell.id, outcome: result.passed ? "pass" : result.outcome)
            cellResults.append(result)
        }
        progress.stop(redraw)

        let finished = Date()
        let cpu = Self.cpuSeconds() - cpuBefore
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let kvm: String
        if interrupted || !settings.boot {
            // Nothing to probe for: an interrupted run must end now, a run without boots needs no accelerator.
            kvm = "not probed (\(interrupted ? "interrupted" : "no boots"))"
        } else if cells.contains(where: { $0.target.qemu.kvmHostArch == KvmProbe.hostArch }) {
            let probe = await accelerators.kvmProbe()
            kvm = "\(probe.usable ? "usable" : "unusable"): \(probe.reason)"
        } else {
            kvm = "not needed: no cell runs on this host's architecture (\(KvmProbe.hostArch))"
        }
        let info = RunInfo(id: runID, started: started, finished: finished, wallSeconds: (ContinuousClock.now - clock).seconds,
                           cpuSeconds: cpu, floorSeconds: cpu / Double(max(cores, 1)), jobs: settings.jobs, cores: cores,
                           host: ProcessInfo.processInfo.hostName, hostArch: KvmProbe.hostArch, kvm: kvm,
                           matrix: project.matrix.file, cache: workspace.root, command: settings.command, interrupted: interrupted)
        let steps = graph.order.map { StepResult(id: $0, outcome: outcomes[$0]!) }
        let results = RunResults(run: info, cells: cellResults, steps: steps)
        do { try Reports.write(results, to: runDirectory) } catch {
            throw .host("cannot write the reports into \(runDirectory) (is the disk full?)", underlying: error)
        }
        let latest = "\(workspace.runs)/latest"
        try? FileManager.default.removeItem(atPath: latest)
        try? FileManager.default.createSymbolicLink(atPath: latest, withDestinationPath: runID)
        return Finished(results: results, directory: runDirectory, hostFailed: hostFailed)
    }

    static func runID(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date) + "-\(getpid())"
    }

    /// CPU seconds of this process and every child it has reaped (make, compilers, QEMU).
    static func cpuSeconds() -> Double {
        var own = rusage(), children = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &own)
        getrusage(Int32(RUSAGE_CHILDREN.rawValue), &children)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(own.ru_utime) + seconds(own.ru_stime) + seconds(children.ru_utime) + seconds(children.ru_stime)
    }

    /// An x86_64 Linux kernel to prove KVM with: Scripts/bootstrap's Debian cloud kernel,
    /// else one kmatrix built for an x86_64 cell.
    public static func probeKernel(workspace: Workspace, cells: [Cell]) -> String? {
        var candidates = ["\(workspace.root)/probe/vmlinuz"]
        for cell in cells where cell.target.qemu.kvmHostArch == "x86_64" {
            candidates += cell.target.kernel.image.paths.map { "\(workspace.kernelBuild(cell))/\($0)" }
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}

extension StepID {
    static let kernelSourceScope = "linux"
    static let busyboxSourceScope = "busybox"
}

/// Records steps hand to the cell results (kernel records, DTB reports, boot records).
actor RecordStore {
    var configurations: [String: KernelConfiguration] = [:]
    var kernels: [String: KernelBuildRecord] = [:]
    var busyboxes: [String: BusyboxBuildRecord] = [:]
    var images: [String: String] = [:]
    var deviceTrees: [String: DeviceTreeReport] = [:]
    var boots: [String: BootRecord] = [:]
    var excerpts: [StepID: [String]] = [:]

    func set(configuration: KernelConfiguration, for cell: String) { configurations[cell] = configuration }
    func set(kernel: KernelBuildRecord, for cell: String) { kernels[cell] = kernel }
    func set(busybox: BusyboxBuildRecord, for scope: String) { busyboxes[scope] = busybox }
    func set(image: String, for cell: String) { images[cell] = image }
    func set(deviceTree: DeviceTreeReport, for cell: String) { deviceTrees[cell] = deviceTree }
    func set(boot: BootRecord, for cell: String) { boots[cell] = boot }
    func set(excerpt: [String], for step: StepID) { excerpts[step] = excerpt }
}
