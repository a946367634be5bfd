import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixDeviceTree
import KmatrixKernel
import KmatrixUserspace

/// The kinds of step, in the order a cell goes through them.
public enum StepKind: String, Sendable, Codable, CaseIterable, Comparable {
    case sourceKernel = "source.kernel"
    case sourceBusybox = "source.busybox"
    case kernelConfig = "kernel.config"
    case kernelBuild = "kernel.build"
    case busyboxBuild = "busybox.build"
    case rootfs
    case dtbCheck = "dtb.check"
    case boot

    var order: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (a: StepKind, b: StepKind) -> Bool { a.order < b.order }
}

/// Names one step: its kind and what it is for (a cell id, an ABI and toolchain, a source).
public struct StepID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var kind: StepKind
    public var scope: String

    public init(_ kind: StepKind, _ scope: String) {
        self.kind = kind
        self.scope = scope
    }

    public var description: String { "\(kind.rawValue)[\(scope)]" }
    public static func < (a: StepID, b: StepID) -> Bool { a.description < b.description }
}

/// What a step hands to the steps after it, typed by kind.
public enum StepOutput: Sendable {
    /// An unpacked (or in-place) source tree.
    case source(tree: String)
    case config(ConfigOutput)
    case kernel(KernelBuildRecord)
    case busybox(BusyboxBuildRecord)
    case rootfs(RootfsOutput)
    /// nil: the target has no device tree.
    case deviceTree(DeviceTreeReport?)
    case boot(BootRecord)
}

/// A verified kernel config: what defined it (read by the build step, never recomputed),
/// the result, and the cached `.config`.
public struct ConfigOutput: Sendable, Codable {
    public var inputs: KernelConfigInputs
    public var configuration: KernelConfiguration
    /// The verified `.config` in the cache entry.
    public var configFile: String
}

public struct RootfsOutput: Sendable, Codable {
    /// The published image in the cache.
    public var image: String
    /// Its link in the cell's images folder: what boots and `plan` name.
    public var linked: String
    public var key: String
}

/// What one step did.
public struct StepOutcome: Sendable {
    public enum Status: String, Sendable, Codable {
        case passed, failed
        /// Not run: a step it depends on failed.
        case skipped
        /// Not run, or stopped, because the run was interrupted.
        case interrupted
    }

    public var status: Status
    public var failure: FailureClass?
    public var cacheHit: Bool
    public var seconds: Double
    /// One line for people.
    public var summary: String
    public var logPath: String?
    /// The commands this step ran, in order; on a cache hit, the ones it would have run.
    /// They come from the same definition `kmatrix plan` prints.
    public var commands: [Command]
    /// The cache key of its inputs, when the step is cached.
    public var key: String?
    public var output: StepOutput?
    /// The lines that explain a failure (dropped options, the first compiler errors, a panic trace).
    public var excerpt: [String]

    public init(status: Status, failure: FailureClass? = nil, cacheHit: Bool = false, seconds: Double = 0, summary: String = "",
                logPath: String? = nil, commands: [Command] = [], key: String? = nil, output: StepOutput? = nil, excerpt: [String] = []) {
        self.status = status
        self.failure = failure
        self.cacheHit = cacheHit
        self.seconds = seconds
        self.summary = summary
        self.logPath = logPath
        self.commands = commands
        self.key = key
        self.output = output
        self.excerpt = excerpt
    }

    public static func passed(_ summary: String, output: StepOutput?, cacheHit: Bool = false, logPath: String? = nil,
                              commands: [Command] = [], key: String? = nil) -> StepOutcome {
        StepOutcome(status: .passed, cacheHit: cacheHit, summary: summary, logPath: logPath, commands: commands, key: key, output: output)
    }

    public static func failed(_ failure: FailureClass, _ summary: String, logPath: String? = nil, commands: [Command] = [],
                              excerpt: [String] = []) -> StepOutcome {
        StepOutcome(status: .failed, failure: failure, summary: summary, logPath: logPath, commands: commands, excerpt: excerpt)
    }

    /// A host failure carried by an error: `.infrastructure`, or `.interrupted` when the work was stopped.
    public static func host(_ error: KmatrixError, logPath: String? = nil, commands: [Command] = []) -> StepOutcome {
        .failed(error.kind == .interrupted ? .interrupted : .infrastructure, error.description, logPath: logPath, commands: commands)
    }
}

/// A step's failure as a value a step body can throw and turn into its outcome.
struct StepFailure: Error {
    var failure: FailureClass
    var message: String
    static func missing(_ what: String, from id: StepID) -> StepFailure {
        StepFailure(failure: .infrastructure, message: "\(id) passed without its \(what)")
    }
}

/// The outcomes of a step's dependencies, read by kind.
struct StepInputs: Sendable {
    let outcomes: [StepID: StepOutcome]

    /// The output of `id`, as `extract` reads it; a passed dependency without it is a failure.
    func output<T>(_ id: StepID, _ what: String, _ extract: (StepOutput) -> T?) throws(StepFailure) -> T {
        guard let output = outcomes[id]?.output, let value = extract(output) else { throw .missing(what, from: id) }
        return value
    }

    func tree(_ id: StepID) throws(StepFailure) -> String {
        try output(id, "source tree") { if case .source(let tree) = $0 { tree } else { nil } }
    }

    func config(_ id: StepID) throws(StepFailure) -> ConfigOutput {
        try output(id, "configuration") { if case .config(let config) = $0 { config } else { nil } }
    }

    func kernel(_ id: StepID) throws(StepFailure) -> KernelBuildRecord {
        try output(id, "kernel record") { if case .kernel(let record) = $0 { record } else { nil } }
    }

    func busybox(_ id: StepID) throws(StepFailure) -> BusyboxBuildRecord {
        try output(id, "busybox record") { if case .busybox(let record) = $0 { record } else { nil } }
    }

    func rootfs(_ id: StepID) throws(StepFailure) -> RootfsOutput {
        try output(id, "root filesystem image") { if case .rootfs(let output) = $0 { output } else { nil } }
    }
}

/// One step as `kmatrix plan` shows it: the same definition `run` executes.
public struct PlannedStep: Sendable, Encodable {
    public var id: StepID
    public var dependencies: [StepID]
    /// What kmatrix does in process (unpacking, packing, checking), and what the plan cannot know yet.
    public var note: String?
    public var commands: [Command]
    /// The step's cache key when its inputs are known now (nil for steps that are never cached).
    public var key: String?
    /// Whether the cache already holds this step's result.
    public var cached: Bool

    enum CodingKeys: String, CodingKey { case step, kind, scope, dependencies, note, commands, key, cached }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id.description, forKey: .step)
        try c.encode(id.kind, forKey: .kind)
        try c.encode(id.scope, forKey: .scope)
        try c.encode(dependencies.map(\.description), forKey: .dependencies)
        try c.encodeIfPresent(note, forKey: .note)
        try c.encode(commands, forKey: .commands)
        try c.encodeIfPresent(key, forKey: .key)
        try c.encode(cached, forKey: .cached)
    }
}

/// One kind of step, defined once: its inputs (hashed into its cache key), its typed
/// output, the commands it runs, and how it runs. `plan` renders it, `run` executes it.
protocol Step: Sendable {
    var id: StepID { get }
    var dependencies: [StepID] { get }
    /// The note and commands `plan` prints, resolved as far as the cache allows.
    func plan(_ context: StepContext) async -> PlannedStep
    func run(_ context: StepContext, _ inputs: StepInputs) async -> StepOutcome
}

extension Step {
    func planned(note: String?, commands: [Command], key: String? = nil, cached: Bool = false) -> PlannedStep {
        PlannedStep(id: id, dependencies: dependencies, note: note, commands: commands, key: key, cached: cached)
    }
}
