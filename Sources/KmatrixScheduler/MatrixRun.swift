import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixDeviceTree
import KmatrixKernel
import KmatrixUserspace

/// How a run behaves: `kmatrix run`, and the parts of it `build`, `rootfs` and `boot` run.
public struct RunSettings: Sendable {
    /// Job slots shared by every make.
    public var jobs: Int
    /// The kinds of step the command wants; the steps they need come along.
    public var goals: Set<StepKind> = Set(StepKind.allCases)
    /// Boot cells whose DTB check failed (the cell still fails).
    public var bootAnyway = false
    public var live = false
    /// Progress lines go to standard error (the command prints JSON on standard output).
    public var progressToStandardError = false
    public var command: [String] = []
    public var rootfs = RootfsSettings()
    public var bootSettings = BootSettings()
    /// A read-only cache consulted before building (`--cache-from`).
    public var upstreamCache: String?
    /// Compile kernels through ccache when it is installed (`--ccache`; off by default).
    public var ccache = false
    /// `DISTCC_HOSTS` for the kernel compiles (`--distcc`); nil compiles here only.
    public var distccHosts: String?
    /// Where the run directory goes (`run --out`) instead of `<cache>/runs/<id>`: a
    /// self-contained result another machine merges. It leaves `runs/latest` alone.
    public var outputDirectory: String?

    public init(jobs: Int) { self.jobs = jobs }

    public var boot: Bool {
        get { goals.contains(.boot) }
        set { if newValue { goals.insert(.boot) } else { goals.remove(.boot) } }
    }
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
        /// Every step's outcome with its typed output, for commands that print more than results.json.
        public var outcomes: [StepID: StepOutcome]
    }

    public func execute() async throws(KmatrixError) -> Finished {
        let lock = try RunLock(directory: workspace.root)
        defer { withExtendedLifetime(lock) {} }
        let started = Date()
        let clock = ContinuousClock.now
        let runID = Self.runID(started)
        let runDirectory = settings.outputDirectory ?? "\(workspace.runs)/\(runID)"
        do {
            try FileManager.default.createDirectory(atPath: "\(runDirectory)/logs", withIntermediateDirectories: true)
        } catch {
            throw .host("cannot create the run directory \(runDirectory)", underlying: error)
        }
        let cpuBefore = Self.cpuSeconds()

        let cellGraph = CellGraph(cells: cells, project: project, settings: settings)
        let context = try await Self.context(project: project, workspace: workspace, settings: settings, runDirectory: runDirectory,
                                             needs: cellGraph.sources)
        let graph = cellGraph.graph(context)
        let problems = graph.validate()
        guard problems.isEmpty else { throw .host("kmatrix planned a broken step graph: \(problems.joined(separator: "; "))") }

        let sharedScopes = cellGraph.order.filter { [.sourceKernel, .sourceBusybox, .busyboxBuild].contains($0.kind) }.map(\.scope)
        let progress = Progress(scopes: sharedScopes + cells.map(\.id), live: settings.live,
                                toStandardError: settings.progressToStandardError)
        let redraw = progress.start()
        let outcomes = await withTaskCancellationHandler {
            await graph.run { id, outcome in progress.stepChanged(id, outcome) }
        } onCancel: {}
        let interrupted = Task.isCancelled || outcomes.values.contains { $0.status == .interrupted }

        var cellResults: [CellResult] = []
        var hostFailed = false
        for cell in cells {
            let result = CellResult(cell: cell, steps: cellGraph.cellSteps[cell.id] ?? [], outcomes: outcomes, project: project)
            if result.outcome.failure?.isHostFailure == true { hostFailed = true }
            progress.cellFinished(cell.id, outcome: result.outcome.rawValue)
            cellResults.append(result)
        }
        progress.stop(redraw)
        if !interrupted { cellResults = await BuildChange.attach(to: cellResults, runsIn: workspace.runs, before: runID) }

        let finished = Date()
        let cpu = Self.cpuSeconds() - cpuBefore
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let kvm: String
        if interrupted || !settings.boot {
            // Nothing to probe for: an interrupted run must end now, a run without boots needs no accelerator.
            kvm = "not probed (\(interrupted ? "interrupted" : "no boots"))"
        } else if cells.contains(where: { $0.target.qemu.kvmHostArch == KvmProbe.hostArch }), let accelerators = context.accelerators {
            let probe = await accelerators.kvmProbe()
            kvm = "\(probe.usable ? "usable" : "unusable"): \(probe.reason)"
        } else {
            kvm = "not needed: no cell runs on this host's architecture (\(KvmProbe.hostArch))"
        }
        let info = RunInfo(id: runID, started: started, finished: finished, wallSeconds: (ContinuousClock.now - clock).seconds,
                           cpuSeconds: cpu, floorSeconds: cpu / Double(max(cores, 1)), jobs: settings.jobs, cores: cores,
                           host: ProcessInfo.processInfo.hostName, hostArch: KvmProbe.hostArch, kvm: kvm,
                           matrix: project.matrix.file, cache: workspace.root, command: settings.command, interrupted: interrupted)
        var run = info
        run.directory = runDirectory
        run.matrixDigest = MatrixDigest.of(project)
        run.matrixCells = project.cells.map(\.id)
        let steps = graph.order.compactMap { id in outcomes[id].map { StepResult(id: id, outcome: $0) } }
        let results = RunResults(run: run, cells: cellResults, steps: steps)
        do { try Reports.write(results, to: runDirectory) } catch {
            throw .host("cannot write the reports into \(runDirectory) (is the disk full?)", underlying: error)
        }
        // The configured size limit, kept while the lock is still held; this run's entries stay.
        if let limit = try? CacheLimit.configured(workspaceRoot: workspace.root) {
            let used = Set(outcomes.values.compactMap(\.key))
            _ = try? context.cache.collectGarbage(maxBytes: limit, keeping: used)
        }
        if settings.outputDirectory == nil {
            let latest = "\(workspace.runs)/latest"
            try? FileManager.default.removeItem(atPath: latest)
            try? FileManager.default.createSymbolicLink(atPath: latest, withDestinationPath: runID)
        }
        return Finished(results: results, directory: runDirectory, hostFailed: hostFailed, outcomes: outcomes)
    }

    /// What the steps share. Without `runDirectory` (planning) nothing is started: no
    /// jobserver, no KVM probe, missing sources are left nil for the plan to name.
    static func context(project: Project, workspace: Workspace, settings: RunSettings, runDirectory: String?,
                        needs: NeededSources,
                        sources: PlanSources? = nil) async throws(KmatrixError) -> StepContext {
        let planning = runDirectory == nil
        func resolve(_ spec: SourceSpec, _ what: String) throws(KmatrixError) -> ResolvedSource? {
            do throws(KmatrixError) {
                return try SourceResolver.resolve(spec, what: what, workspace: workspace, file: project.matrix.file)
            } catch {
                if planning, error.kind == .hostFailure { return nil }
                throw error
            }
        }
        var kernelSources: [String: ResolvedSource] = [:], busyboxSource = sources?.busybox
        if let sources {
            for kernel in needs.kernels { kernelSources[kernel.scope] = sources.kernel }
        } else {
            // A tree's identity is its content, taken now: an edit is never served stale.
            let scratch = "\(workspace.root)/tmp"
            for kernel in needs.kernels {
                let what = kernel.name.map { "kernel \($0)" } ?? "kernel"
                if let found = try resolve(kernel.spec, what) {
                    kernelSources[kernel.scope] = try await SourceIdentity.identify(found, scratch: scratch)
                }
            }
            if needs.busybox, let found = try resolve(project.matrix.sources.busybox, "busybox") {
                busyboxSource = try await SourceIdentity.identify(found, scratch: scratch)
            }
        }
        let cache = ArtifactCache(root: workspace.cache)
        var jobserver: Jobserver?
        var accelerators: AcceleratorChoice?
        if let runDirectory {
            jobserver = try Jobserver(slots: settings.jobs, directory: runDirectory)
            cache.sweepStaging()
            accelerators = AcceleratorChoice(probeKernel: ProbeKernel.find(workspace: workspace, cells: project.cells),
                                             cacheFile: AcceleratorChoice.cacheFile(in: workspace))
        }
        return StepContext(project: project, workspace: workspace, settings: settings, runDirectory: runDirectory,
                           kernelSources: kernelSources, busyboxSource: busyboxSource, jobserver: jobserver, cache: cache,
                           upstreamWorkspace: settings.upstreamCache.map { Workspace(root: $0) },
                           accelerators: accelerators, ccache: settings.ccache ? ProcessRunner.which("ccache") : nil,
                           distcc: try Self.distcc(settings.distccHosts), compilers: CompilerVersions())
    }

    /// The distcc client for `--distcc HOSTS`: bad input when the hosts are blank, a host
    /// failure when distcc is not installed.
    static func distcc(_ hosts: String?) throws(KmatrixError) -> Distcc? {
        guard let hosts else { return nil }
        guard !hosts.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw KmatrixError.badInput("--distcc: no hosts given (DISTCC_HOSTS syntax: 'host[:port][/limit] ...')")
        }
        guard let executable = ProcessRunner.which("distcc") else {
            throw KmatrixError.host("--distcc \(hosts): distcc is not installed (apt-get install distcc)")
        }
        return Distcc(executable: executable, hosts: hosts)
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
}

