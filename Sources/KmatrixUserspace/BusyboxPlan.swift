import Foundation
import KmatrixCore

/// The busybox commands for one (ABI, toolchain): shared by every cell that needs it.
public struct BusyboxPlan: Sendable {
    public var crossCompile: String?
    public var sourceTree: String
    public var buildDirectory: String
    public var installDirectory: String
    public var jobs: Int
    /// Options on top of `defconfig`; static and no `tc` always.
    public var options: [String]

    public static let requiredOptions = ["CONFIG_STATIC=y", "# CONFIG_TC is not set"]

    public init(crossCompile: String?, sourceTree: String, buildDirectory: String, installDirectory: String,
                jobs: Int, options: [String] = []) {
        self.crossCompile = crossCompile
        self.sourceTree = sourceTree
        self.buildDirectory = buildDirectory
        self.installDirectory = installDirectory
        self.jobs = jobs
        self.options = options
    }

    public func make(_ targets: [String], jobs: Int? = nil) -> Command {
        var argv = ["make", "-C", sourceTree, "O=\(buildDirectory)"]
        if let crossCompile { argv.append("CROSS_COMPILE=\(crossCompile)") }
        if let jobs { argv.append("-j\(jobs)") }
        return Command(argv + targets, environment: ["LC_ALL": "C", "KCONFIG_NOTIMESTAMP": "1"])
    }

    public var commands: [Command] {
        [make(["defconfig"]), make(["oldconfig"]), make([], jobs: jobs),
         make(["CONFIG_PREFIX=\(installDirectory)", "install"])]
    }
}
