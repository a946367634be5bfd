import Foundation
import KmatrixCore

/// The busybox commands for one (ABI, toolchain): shared by every cell that needs it.
public struct BusyboxPlan: Sendable {
    public var crossCompile: String?
    /// The C compiler and how it says its version (from the userspace toolchain descriptor).
    public var compiler: String
    public var versionArguments: [String]
    public var sourceTree: String
    public var buildDirectory: String
    public var installDirectory: String
    public var jobs: Int
    /// The make target the configuration starts from (`defconfig`, `allnoconfig`).
    public var base: String
    /// Options on top of `base`; static and no `tc` always.
    public var options: [String]
    /// Compile through these distcc hosts (`--distcc`): every make gets `CC="distcc
    /// <cross>gcc"` (the install too, or make would find the objects' command changed and
    /// compile them all again here); busybox's host tools (HOSTCC) and links stay local.
    /// Not in the build's inputs: where a compile runs does not change the binary.
    public var distcc: Distcc?

    public static let requiredOptions = ["CONFIG_STATIC=y", "# CONFIG_TC is not set"]

    public init(crossCompile: String?, sourceTree: String, buildDirectory: String, installDirectory: String,
                jobs: Int, base: String = BusyboxSpec.defaultBase, options: [String] = [], compiler: String? = nil,
                versionArguments: [String] = ["-dumpfullversion"]) {
        self.crossCompile = crossCompile
        self.compiler = compiler ?? "\(crossCompile ?? "")gcc"
        self.versionArguments = versionArguments
        self.sourceTree = sourceTree
        self.buildDirectory = buildDirectory
        self.installDirectory = installDirectory
        self.jobs = jobs
        self.base = base
        self.options = options
    }

    public func make(_ targets: [String], jobs: Int? = nil) -> Command {
        var argv = ["make", "-C", sourceTree, "O=\(buildDirectory)"]
        if let crossCompile { argv.append("CROSS_COMPILE=\(crossCompile)") }
        if let jobs { argv.append("-j\(jobs)") }
        if let distcc { argv.append(distcc.makeCC("\(crossCompile ?? "")gcc")) }
        let environment: [String: String?] = ["LC_ALL": "C", "KCONFIG_NOTIMESTAMP": "1"].merging(distcc?.environment ?? [:]) { $1 }
        return Command(argv + targets, environment: environment, cleanEnvironment: true)
    }

    /// The `.config` lines kmatrix writes over the base's (user options win over the
    /// required ones only where they do not contradict them: static and no tc stay).
    public var configLines: [String] {
        var byName: [String: String] = [:]
        var order: [String] = []
        for line in options + Self.requiredOptions {
            guard let name = Self.optionName(line) else { continue }
            if byName[name] == nil { order.append(name) }
            byName[name] = line
        }
        return order.compactMap { byName[$0] }
    }

    /// `CONFIG_X` of `CONFIG_X=...` or `# CONFIG_X is not set`.
    public static func optionName(_ line: String) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("# CONFIG_"), trimmed.hasSuffix(" is not set") {
            return String(trimmed.dropFirst(2).dropLast(" is not set".count))
        }
        if trimmed.hasPrefix("CONFIG_"), let equals = trimmed.firstIndex(of: "=") { return String(trimmed[..<equals]) }
        return nil
    }

    /// `oldconfig` asks about symbols the new lines reveal; empty answers take the defaults.
    /// A fixed shell text, the make command passed as arguments.
    public var oldconfigCommand: Command {
        let make = make(["oldconfig"])
        return Command(["/bin/sh", "-c", "yes '' | \"$@\"", "kmatrix-oldconfig"] + make.argv, environment: make.environment,
                       cleanEnvironment: true)
    }

    /// The base config, oldconfig (after kmatrix's .config lines), the compile, the install.
    public func commands(makeArguments: [String] = []) -> [Command] {
        [make([base]), oldconfigCommand, make(makeArguments, jobs: jobs),
         make(["CONFIG_PREFIX=\(installDirectory)", "install"])]
    }
}

extension BusyboxPlan {
    /// The toolchain that builds userspace for `toolchain` (clang cells use gcc's libc).
    public static func userspaceToolchain(for toolchain: Toolchain, in project: Project) -> Toolchain {
        toolchain.userspaceToolchain.flatMap { project.toolchains[$0] } ?? toolchain
    }

    /// The shared busybox build for a target's ABI and a toolchain, in the workspace's
    /// layout (`build/busybox/<debianArch>-<toolchain>`, installed into its `install/`).
    public init(target: Target, toolchain: Toolchain, project: Project, workspace: Workspace, sourceTree: String, jobs: Int) {
        let builder = Self.userspaceToolchain(for: toolchain, in: project)
        let build = workspace.busyboxBuild(debianArch: target.userspace.debianArch, toolchain: builder.name)
        let arch = builder.architectures[target.userspace.debianArch]
        self.init(crossCompile: arch?.crossCompile,
                  sourceTree: sourceTree, buildDirectory: build, installDirectory: "\(build)/install",
                  jobs: jobs, base: project.matrix.busybox.base, options: project.matrix.busybox.options,
                  compiler: arch.map { builder.compilerPath(for: $0) }, versionArguments: builder.versionArguments)
    }
}
