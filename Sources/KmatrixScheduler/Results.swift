import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixKernel

/// `results.json`: everything a run did, for tools. Documented in docs/results-schema.md;
/// `schema` changes when a field changes meaning or disappears.
public struct RunResults: Codable, Sendable {
    public static let currentSchema = "kmatrix-results/1"

    public var schema: String = RunResults.currentSchema
    public var run: RunInfo
    public var cells: [CellResult]
    /// Every step of the run, shared ones (sources, busybox) included once.
    public var steps: [StepResult]
    public var summary: Summary

    public init(run: RunInfo, cells: [CellResult], steps: [StepResult]) {
        self.run = run
        self.cells = cells
        self.steps = steps
        summary = Summary(cells: cells.count, passed: cells.filter(\.passed).count,
                          failed: cells.filter { !$0.passed }.count,
                          steps: steps.count, cacheHits: steps.filter(\.cacheHit).count,
                          stepSeconds: steps.reduce(0) { $0 + $1.seconds })
    }

    public struct Summary: Codable, Sendable {
        public var cells, passed, failed, steps, cacheHits: Int
        public var stepSeconds: Double
    }
}

public struct RunInfo: Codable, Sendable {
    public var id: String
    public var started: Date
    public var finished: Date
    public var wallSeconds: Double
    /// CPU seconds of every child process (make, compilers, QEMU) plus kmatrix itself.
    public var cpuSeconds: Double
    /// `cpuSeconds / cores`: how long the run would take if every core were busy all along.
    public var floorSeconds: Double
    public var jobs: Int
    public var cores: Int
    public var host: String
    public var hostArch: String
    public var kvm: String
    public var matrix: String
    public var cache: String
    public var command: [String]
    public var interrupted: Bool
    /// The run directory as it was written; `merge` rewrites log paths under it to where
    /// the results now live.
    public var directory: String?
    /// sha256 over the matrix and the descriptors its cells use (`MatrixDigest`): results
    /// with different digests come from different matrices and are not merged.
    public var matrixDigest: String?
    /// Every cell of the matrix in its order, selected or not: `merge` orders by it and
    /// names the cells no input ran.
    public var matrixCells: [String]?

    public init(id: String, started: Date, finished: Date, wallSeconds: Double, cpuSeconds: Double, floorSeconds: Double,
                jobs: Int, cores: Int, host: String, hostArch: String, kvm: String, matrix: String, cache: String,
                command: [String], interrupted: Bool) {
        self.id = id; self.started = started; self.finished = finished; self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds; self.floorSeconds = floorSeconds; self.jobs = jobs; self.cores = cores
        self.host = host; self.hostArch = hostArch; self.kvm = kvm; self.matrix = matrix; self.cache = cache
        self.command = command; self.interrupted = interrupted
    }
}

public struct StepResult: Codable, Sendable {
    public var kind: StepKind
    public var scope: String
    public var status: StepOutcome.Status
    public var classification: FailureClass?
    public var cacheHit: Bool
    public var seconds: Double
    public var summary: String
    public var log: String?
    /// The step's cache key, when it is cached.
    public var key: String?
    /// The commands it ran (or, on a cache hit, would have run): what `kmatrix plan` lists.
    public var commands: [Command]

    public init(id: StepID, outcome: StepOutcome) {
        kind = id.kind
        scope = id.scope
        status = outcome.status
        classification = outcome.failure
        cacheHit = outcome.cacheHit
        seconds = outcome.seconds
        summary = outcome.summary
        log = outcome.logPath
        key = outcome.key
        commands = outcome.commands
    }

    public var id: StepID { StepID(kind, scope) }
}

public struct CellResult: Codable, Sendable {
    public var id: String
    public var target: String
    public var toolchain: String
    public var profile: String
    public var rootfs: String
    /// The matrix's name for the kernel source (`6.12`); nil when it has one unnamed kernel.
    public var kernelName: String?
    /// Kernel `ARCH`.
    public var arch: String
    /// `pass`, or the class of the failure that decided it (`FailureClass`).
    public var outcome: CellOutcome
    public var passed: Bool
    /// The step that decided the outcome when it is not `pass`.
    public var failedStep: String?
    /// `kind[scope]` of every step this cell used, in order.
    public var steps: [String]
    public var kernel: KernelSummary?
    /// Sizes, compiler warnings and the change since the cell's previous run.
    public var build: BuildFacts?
    public var config: ConfigSummary?
    public var busybox: BusyboxSummary?
    public var dtb: DeviceTreeSummary?
    public var boot: BootSummary?
    public var artifacts: [Artifact]
    /// The last lines of the failing step's log.
    public var excerpt: [String]
    /// Each test run in the guest (KUnit cases, scripts, their TAP tests); nil when the cell runs none.
    public var tests: [GuestTestResult]?

    public init(id: String, target: String, toolchain: String, profile: String, rootfs: String, arch: String,
                outcome: CellOutcome, passed: Bool, failedStep: String? = nil, steps: [String] = [],
                kernel: KernelSummary? = nil, config: ConfigSummary? = nil, busybox: BusyboxSummary? = nil,
                dtb: DeviceTreeSummary? = nil, boot: BootSummary? = nil, artifacts: [Artifact] = [], excerpt: [String] = []) {
        self.id = id; self.target = target; self.toolchain = toolchain; self.profile = profile; self.rootfs = rootfs
        self.arch = arch; self.outcome = outcome; self.passed = passed; self.failedStep = failedStep; self.steps = steps
        self.kernel = kernel; self.config = config; self.busybox = busybox; self.dtb = dtb; self.boot = boot
        self.artifacts = artifacts; self.excerpt = excerpt
    }
}

public struct Artifact: Codable, Sendable {
    public var name: String
    public var path: String
    public var bytes: UInt64
    public var sha256: String

    public init(name: String, path: String, bytes: UInt64, sha256: String) {
        self.name = name; self.path = path; self.bytes = bytes; self.sha256 = sha256
    }
}

public struct KernelSummary: Codable, Sendable {
    public var toolchainVersion: String
    public var sourceSHA256: String
    public var configSHA256: String
    public var buildSeconds: Double
    public var imageBytes: UInt64
    public var warnings: Int
    public var errors: Int
    /// ccache's hits and misses when the kernel was compiled in this run (nil when it came
    /// from the cache, or ccache was off).
    public var ccache: CcacheStats?

    public init(toolchainVersion: String, sourceSHA256: String, configSHA256: String, buildSeconds: Double,
                imageBytes: UInt64, warnings: Int, errors: Int) {
        self.toolchainVersion = toolchainVersion; self.sourceSHA256 = sourceSHA256; self.configSHA256 = configSHA256
        self.buildSeconds = buildSeconds; self.imageBytes = imageBytes; self.warnings = warnings; self.errors = errors
    }
}

public struct ConfigSummary: Codable, Sendable {
    public struct Mismatch: Codable, Sendable {
        public var option: String
        public var asked: String
        public var got: String
        public init(option: String, asked: String, got: String) { self.option = option; self.asked = asked; self.got = got }
    }
    public var requested: Int
    public var mismatches: [Mismatch]
    public init(requested: Int, mismatches: [Mismatch]) { self.requested = requested; self.mismatches = mismatches }
}

public struct BusyboxSummary: Codable, Sendable {
    public var version: String
    public var buildSeconds: Double
    public var cacheHit: Bool
    public init(version: String, buildSeconds: Double, cacheHit: Bool) {
        self.version = version; self.buildSeconds = buildSeconds; self.cacheHit = cacheHit
    }
}

public struct DeviceTreeSummary: Codable, Sendable {
    public struct Finding: Codable, Sendable {
        public var severity: String
        public var node: String
        public var reason: String
        public init(severity: String, node: String, reason: String) { self.severity = severity; self.node = node; self.reason = reason }
    }
    public var file: String
    public var passed: Bool
    public var errors: Int
    public var warnings: Int
    public var findings: [Finding]
    public init(file: String, passed: Bool, errors: Int, warnings: Int, findings: [Finding]) {
        self.file = file; self.passed = passed; self.errors = errors; self.warnings = warnings; self.findings = findings
    }
}

public struct BootSummary: Codable, Sendable {
    public struct Phase: Codable, Sendable, Equatable {
        public var name: String
        /// Seconds since QEMU started.
        public var seconds: Double
        public init(name: String, seconds: Double) { self.name = name; self.seconds = seconds }
    }
    public var outcome: String
    public var accelerator: String
    public var phases: [Phase]
    public var seconds: Double
    public var qemuVersion: String
    public var command: [String]
    public var log: String
    public var tail: [String]
    /// From the boot record (KmatrixBoot): milestones on the kernel's clock, splats it went
    /// on from, slowest initcalls, every boot of `--retries`/`--boots`, phase spread.
    public var kernelPhases: [KernelPhase]?, kernelWarnings: [KernelWarning]?, slowestInitcalls: [InitcallTime]?
    public var attempts: [BootAttempt]?, spread: [PhaseSpread]?
    /// Set when LAVA booted the cell (`kmatrix lava import`): the device type, job, LAVA's verdict.
    public var lava: LavaBootSummary?
    public init(outcome: String, accelerator: String, phases: [Phase], seconds: Double, qemuVersion: String,
                command: [String], log: String, tail: [String]) {
        self.outcome = outcome; self.accelerator = accelerator; self.phases = phases; self.seconds = seconds
        self.qemuVersion = qemuVersion; self.command = command; self.log = log; self.tail = tail
    }
}

/// What LAVA said about a boot it ran (`kmatrix lava import`). The cell's outcome comes from
/// the console through kmatrix's classifier; these are LAVA's own words, kept beside it.
public struct LavaBootSummary: Codable, Sendable, Equatable {
    /// The LAVA device type that booted it (`qemu`, or a board's `lava.deviceType`).
    public var deviceType: String
    /// The LAVA job id, when given.
    public var jobID: String?
    /// LAVA's result of the whole job: `pass` or `fail`.
    public var job: String
    /// LAVA's class of a failed job (`Infrastructure`, `Job`, `Test`, `Bug`, `Configuration`,
    /// `Canceled`, `LAVATimeout`) and its message.
    public var errorType: String?
    public var errorMessage: String?
    /// The result of the job's `kmatrix-boot` monitor (`kmatrix_boot`): `pass`, or nil when
    /// LAVA recorded none.
    public var monitor: String?
    /// LAVA's job log as imported, under the run directory.
    public var log: String

    public init(deviceType: String, jobID: String?, job: String, errorType: String?, errorMessage: String?, monitor: String?, log: String) {
        self.deviceType = deviceType; self.jobID = jobID; self.job = job; self.errorType = errorType
        self.errorMessage = errorMessage; self.monitor = monitor; self.log = log
    }
}

extension RunResults {
    public static func load(from path: String) throws(KmatrixError) -> RunResults {
        let (file, data) = try read(path)
        do {
            let results = try decoder.decode(RunResults.self, from: data)
            guard results.schema == RunResults.currentSchema else {
                throw KmatrixError.badInput("\(file): schema '\(results.schema)', this kmatrix reads '\(RunResults.currentSchema)'")
            }
            return results
        } catch let error as KmatrixError {
            throw error
        } catch {
            throw .badInput("\(file): not a kmatrix results file: \(error)")
        }
    }

    /// A run directory's results.json (or the file named), and its bytes.
    static func read(_ path: String) throws(KmatrixError) -> (file: String, data: Data) {
        let file = path.hasSuffix(".json") ? path : "\(path)/results.json"
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .badInput("\(file): cannot read it (give a run directory or its results.json)")
        }
        return (file, data)
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }
}
