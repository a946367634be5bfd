import Foundation
import KmatrixCore

/// The kernel commands of one cell, derived from the descriptors alone: what `plan`
/// prints and what the build step runs.
public struct KernelPlan: Sendable {
    public var cell: Cell
    /// The unpacked, read-only source tree.
    public var sourceTree: String
    /// The cell's out-of-tree build directory (`O=`).
    public var buildDirectory: String
    /// `make -j`; `nil` leaves it out, for a caller that hands make a jobserver in `MAKEFLAGS`.
    public var jobs: Int?
    /// Wrap compilers in ccache (when it is installed).
    public var ccache: String?
    /// Send the kernel's compiles to these distcc hosts (`DISTCC_HOSTS` syntax): the
    /// compiler runs as `distcc <compiler>` (through ccache's `CCACHE_PREFIX` when ccache
    /// is on). Host tools, preprocessing and links stay local. Not part of any cache key:
    /// where a compile runs does not change its output.
    public var distcc: Distcc?
    /// Added to the environment of every command (`CCACHE_DIR`...); wins over the
    /// reproducible defaults.
    public var environment: [String: String?]

    public init(cell: Cell, sourceTree: String, buildDirectory: String, jobs: Int?, ccache: String? = nil,
                distcc: Distcc? = nil, environment: [String: String?] = [:]) {
        self.distcc = distcc
        self.cell = cell
        self.sourceTree = sourceTree
        self.buildDirectory = buildDirectory
        self.jobs = jobs
        self.ccache = ccache
        self.environment = environment
    }

    /// Fixed so that two builds of the same inputs give the same `Linux version` banner.
    public static let reproducibleEnvironment: [String: String?] = [
        "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970",
        "KBUILD_BUILD_USER": "kmatrix",
        "KBUILD_BUILD_HOST": "kmatrix",
        // Without it the `#N` of the version string counts the links made in this build
        // folder: a build made again in a used folder (an evicted entry, a stale config
        // configured again, an edit reverted after a `cache prune`) gave another image
        // for the same key.
        "KBUILD_BUILD_VERSION": "1",
        "KCONFIG_NOTIMESTAMP": "1",
        "LC_ALL": "C",
    ]

    /// The environment every make of a kernel gets, as lines of the config and build keys:
    /// a value changed here changes both keys, with no format version to remember to bump.
    static func keyLines(_ environment: [String: String?]) -> [String] {
        environment.sorted { $0.key < $1.key }.map { "env \($0.key)=\($0.value ?? "(unset)")" }
    }

    /// `make -C SRC O=BUILD ARCH=... CROSS_COMPILE=... [LLVM=...] [CC="ccache ..."]`.
    public func make(_ targets: [String], jobs: Int? = nil) -> Command {
        var argv = ["make", "-C", sourceTree, "O=\(buildDirectory)", "ARCH=\(cell.target.kernel.arch)"]
        if let prefix = cell.toolchainArch.crossCompile { argv.append("CROSS_COMPILE=\(prefix)") }
        for (key, value) in cell.makeVariables.sorted(by: { $0.key < $1.key }) { argv.append("\(key)=\(value)") }
        switch (ccache, distcc) {
        case (let ccache?, nil):
            argv.append("CC=\(ccache) \(kernelCompiler)")
            argv.append("HOSTCC=\(ccache) gcc")
        case (let ccache?, _?):
            // CCACHE_PREFIX would send HOSTCC's compiles away too: host tools are built
            // by kbuild's own HOSTCC, locally and uncached.
            argv.append("CC=\(ccache) \(kernelCompiler)")
        case (nil, let distcc?):
            argv.append(distcc.makeCC(kernelCompiler))
        case (nil, nil):
            break
        }
        if let jobs { argv.append("-j\(jobs)") }
        return Command(argv + targets, environment: commandEnvironment, cleanEnvironment: true)
    }

    /// The reproducible defaults, ccache's and distcc's settings, then the caller's additions on top.
    public var commandEnvironment: [String: String?] {
        Self.reproducibleEnvironment.merging(ccacheEnvironment) { _, ccache in ccache }
            .merging(distccEnvironment) { _, distcc in distcc }
            .merging(environment) { _, caller in caller }
    }

    /// `DISTCC_HOSTS`, and ccache's prefix when ccache hands its misses to distcc.
    var distccEnvironment: [String: String?] {
        guard let distcc else { return [:] }
        var environment = distcc.environment
        if ccache != nil { environment["CCACHE_PREFIX"] = distcc.executable }
        return environment
    }

    /// Where ccache logs this build's hits and misses.
    public var ccacheStatsLog: String { "\(buildDirectory)/ccache-stats.log" }

    /// ccache shared by every cell and run: paths under the folder that holds both the
    /// source tree and the build directory are hashed relative to it, and the working
    /// directory not at all, so cells with different `O=` hit each other's entries.
    var ccacheEnvironment: [String: String?] {
        guard ccache != nil else { return [:] }
        var environment: [String: String?] = ["CCACHE_NOHASHDIR": "1", "CCACHE_STATSLOG": ccacheStatsLog]
        let common = zip(sourceTree.split(separator: "/"), buildDirectory.split(separator: "/")).prefix { $0 == $1 }.map(\.0)
        if !common.isEmpty { environment["CCACHE_BASEDIR"] = "/" + common.joined(separator: "/") }
        return environment
    }

    /// The C compiler kbuild runs: the toolchain descriptor's `compiler`.
    public var kernelCompiler: String { cell.toolchain.compilerPath(for: cell.toolchainArch) }

    public var fragmentPath: String { "\(buildDirectory)/kmatrix.fragment" }

    /// The profile's base as `plan` shows it (a file base unresolved; the configure step
    /// uses `KernelConfigInputs.base`, resolved against the matrix file).
    public var configureCommands: [Command] {
        configureCommands(base: cell.profile.baseIsMakeTarget ? .makeTarget(cell.profile.base) : .file(path: cell.profile.base, sha256: ""))
    }

    /// Base config, merge of the generated fragment, `olddefconfig`. merge_config.sh makes
    /// its temporary files in the working directory: that is the build directory, never
    /// the shared source tree. `cachedBase`: the `.config` an earlier run of the base make
    /// target wrote for the same inputs (`KernelConfigInputs.baseFingerprint`), installed
    /// instead of running it again (writable: the cache's copy is read-only).
    public func configureCommands(base: KernelConfigBase, cachedBase: String? = nil) -> [Command] {
        var commands: [Command] = []
        switch (base, cachedBase) {
        case (.makeTarget, let kept?): commands.append(Command(["install", "-m", "0644", kept, configPath]))
        case (.makeTarget(let target), nil): commands.append(make([target]))
        case (.file(let path, _), _): commands.append(Command(["cp", path, configPath]))
        }
        var mergeEnvironment = commandEnvironment
        mergeEnvironment["ARCH"] = cell.target.kernel.arch
        commands.append(Command(["\(sourceTree)/scripts/kconfig/merge_config.sh", "-m", "-O", buildDirectory,
                                 configPath, fragmentPath],
                                environment: mergeEnvironment, workingDirectory: buildDirectory, cleanEnvironment: true))
        commands.append(make(["olddefconfig"]))
        return commands
    }

    public var configPath: String { "\(buildDirectory)/.config" }

    /// `make syncconfig` alone first (a config Kconfig rewrites is stale: found in seconds,
    /// not after a whole build), then the image, the DTBs and, when the config has any
    /// `=m`, the modules, in one make so that `-j` spans them all; then the modules staged
    /// into `modulesStaging`.
    public func buildCommands(modules: Bool) -> [Command] {
        // Several DTBs may come from one target (`dtbs`, which also finds them wherever the
        // kernel version keeps its dts files): name each make target once.
        var targets = [cell.target.kernel.image.target]
        for dtb in cell.target.kernel.dtbs.map(\.target) where !targets.contains(dtb) { targets.append(dtb) }
        let build = make(targets + (modules ? ["modules"] : []), jobs: jobs)
        return [make(["syncconfig"]), build] + (modules ? [make(["modules_install", "INSTALL_MOD_PATH=\(modulesStaging)"])] : [])
    }

    /// Where `modules_install` stages the modules (`<staging>/lib/modules/<release>`).
    public var modulesStaging: String { "\(buildDirectory)/modules-staging" }


    /// Where the image lands (first candidate; the build step checks them all).
    public var imagePath: String { "\(buildDirectory)/\(cell.target.kernel.image.paths[0])" }
    public var dtbPaths: [String] { cell.target.kernel.dtbs.map { "\(buildDirectory)/\($0.paths[0])" } }
}
