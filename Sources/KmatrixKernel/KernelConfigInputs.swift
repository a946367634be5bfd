import Foundation
import KmatrixCore
import KmatrixCrypto

/// Where a cell's kernel config starts.
public enum KernelConfigBase: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `tinyconfig`, `defconfig`, `vexpress_defconfig`...
    case makeTarget(String)
    /// A full config file, with the sha256 of its contents (its identity for caching).
    case file(path: String, sha256: String)

    public var description: String {
        switch self {
        case .makeTarget(let target): "make \(target)"
        case .file(let path, _): path
        }
    }
}

/// The compiler a cell builds with and the version it reports: part of the identity of
/// both the config (Kconfig records `CONFIG_CC_VERSION_TEXT`) and the build.
public struct ToolchainIdentity: Sendable, Hashable, Codable {
    /// The toolchain descriptor's name (`gcc`, `llvm`).
    public var name: String
    /// The compiler kbuild runs (`aarch64-linux-gnu-gcc`, `/usr/lib/llvm-14/bin/clang`).
    public var compiler: String
    /// The first line it prints for its version arguments (`12.2.0`).
    public var version: String
    /// The other tools' versions (assembler, linker, pahole): role to first `--version` line.
    public var tools: [String: String]

    public init(name: String, compiler: String, version: String, tools: [String: String] = [:]) {
        self.name = name
        self.compiler = compiler
        self.version = version
        self.tools = tools
    }

    /// The compiler as keys name it: its file name, not where it is installed (a tool's
    /// identity is its version output, so a clang under another prefix or on another machine
    /// gives the same keys; `aarch64-linux-gnu-gcc` is a name already).
    var compilerName: String { (compiler as NSString).lastPathComponent }

    /// The key lines of the tool versions, in a stable order.
    var toolLines: [String] { tools.sorted { $0.key < $1.key }.map { "tool \($0.key)=\($0.value)" } }

    /// How a tool's version is asked: `(tool, arguments, packages that install it)`.
    public typealias VersionQuery = @Sendable (String, [String], [String]) async throws(KmatrixError) -> String

    /// The compiler's version and those of the tools whose versions Kconfig records
    /// (assembler, linker, pahole: whether it is there at all counts too). A tool that is
    /// missing or does not answer is a host failure naming the packages to install.
    /// `version` lets a run ask each tool once for all its cells.
    public static func probe(_ cell: Cell, version: VersionQuery = { try await CompilerVersion.probe($0, arguments: $1, packages: $2) })
        async throws(KmatrixError) -> ToolchainIdentity {
        let compiler = cell.toolchain.compilerPath(for: cell.toolchainArch)
        let packages = cell.toolchainArch.packages
        var tools: [String: String] = [:]
        for (role, path) in cell.toolchain.toolPaths(for: cell.toolchainArch) {
            tools[role] = try await version(path, ["--version"], packages)
        }
        tools["pahole"] = ProcessRunner.which("pahole") == nil ? "absent" : try await version("pahole", ["--version"], ["dwarves"])
        return ToolchainIdentity(name: cell.toolchain.name, compiler: compiler,
                                 version: try await version(compiler, cell.toolchain.versionArguments, packages), tools: tools)
    }
}

/// Everything that decides a cell's final `.config`: the scheduler hashes it
/// (`fingerprint`) to cache the configure step. Fragment files are read into `requested`,
/// so editing one changes the fingerprint; who asked for an option does not.
public struct KernelConfigInputs: Sendable, Hashable, Codable {
    /// The kernel source's identity (the tarball's sha256).
    public var sourceSHA256: String
    public var arch: String
    public var crossCompile: String?
    public var makeVariables: [String: String]
    public var toolchain: ToolchainIdentity
    public var base: KernelConfigBase
    /// Every requested option, one per symbol (a later request overrides an earlier one),
    /// in the order: target, ABI, root device, profile, matrix, test suites, cell.
    public var requested: [RequestedOption]

    public init(sourceSHA256: String, arch: String, crossCompile: String?, makeVariables: [String: String],
                toolchain: ToolchainIdentity, base: KernelConfigBase, requested: [RequestedOption]) {
        self.sourceSHA256 = sourceSHA256
        self.arch = arch
        self.crossCompile = crossCompile
        self.makeVariables = makeVariables
        self.toolchain = toolchain
        self.base = base
        self.requested = requested
    }

    /// Gathers a cell's options from every descriptor, reading its fragment files, and
    /// probes its compiler. A fragment that cannot be read or parsed is bad input.
    public static func resolve(cell: Cell, project: Project, source: ResolvedSource) async throws(KmatrixError) -> KernelConfigInputs {
        let toolchain = try await ToolchainIdentity.probe(cell)
        return try assemble(cell: cell, project: project, source: source, toolchain: toolchain)
    }

    /// `resolve` without the compiler probe: the pure part, for tests and `plan`.
    public static func assemble(cell: Cell, project: Project, source: ResolvedSource, toolchain: ToolchainIdentity) throws(KmatrixError) -> KernelConfigInputs {
        let matrix = project.matrix
        let target = cell.target
        var sources: [(origin: String, options: [KernelOption])] = []
        func fragments(_ paths: [String], descriptor: String, origin: String) throws(KmatrixError) {
            for path in paths {
                let full = Project.resolveFragment(path, descriptor: descriptor, root: project.root)
                sources.append((origin: "\(origin), fragment \(path)", options: try readFragment(full)))
            }
        }
        sources.append((origin: "target \(target.name) (\(target.file))", options: target.kernel.options))
        try fragments(target.kernel.fragments, descriptor: target.file, origin: "target \(target.name)")
        sources.append((origin: "userspace ABI \(target.userspace.debianArch) of target \(target.name)", options: target.userspace.kernelOptions))
        sources.append((origin: "root device \(cell.rootName) of target \(target.name)", options: cell.rootDevice.kernelOptions))
        sources.append((origin: "profile \(cell.profileName) (\(matrix.file))", options: cell.profile.options))
        try fragments(cell.profile.fragments, descriptor: matrix.file, origin: "profile \(cell.profileName)")
        sources.append((origin: "matrix options (\(matrix.file))", options: matrix.options))
        try fragments(matrix.fragments, descriptor: matrix.file, origin: "matrix")
        for suite in cell.tests { sources.append((origin: "test suite \(suite.name) (\(matrix.file))", options: suite.suite.kunit)) }
        sources.append((origin: "cell options (\(matrix.file))", options: cell.extraOptions))

        var requested: [RequestedOption] = []
        var index: [String: Int] = [:]
        for (origin, options) in sources {
            for option in options {
                let request = RequestedOption(option, origin: origin, formerName: target.kernel.formerNames[option.name])
                if let at = index[option.name] { requested[at] = request } else {
                    index[option.name] = requested.count
                    requested.append(request)
                }
            }
        }

        let base: KernelConfigBase
        if cell.profile.base == "defconfig" {
            // Each board's own: `x86_64_defconfig`, `vexpress_defconfig`, arm64's `defconfig`.
            base = .makeTarget(target.kernel.defconfig)
        } else if cell.profile.baseIsMakeTarget {
            base = .makeTarget(cell.profile.base)
        } else {
            let path = Project.resolveFragment(cell.profile.base, descriptor: matrix.file, root: project.root)
            do { base = .file(path: path, sha256: try SHA256.hex(fileAt: path)) } catch {
                throw .badInput("\(matrix.file): profiles.\(cell.profileName).base: cannot read \(path)")
            }
        }
        return KernelConfigInputs(sourceSHA256: source.sha256, arch: target.kernel.arch, crossCompile: cell.toolchainArch.crossCompile,
                                  makeVariables: cell.makeVariables, toolchain: toolchain, base: base, requested: requested)
    }

    /// Parses a fragment file; every line must be an option, a comment or blank.
    public static func readFragment(_ path: String) throws(KmatrixError) -> [KernelOption] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .badInput("cannot read the kernel config fragment \(path)")
        }
        var options: [KernelOption] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            do throws(KernelOptionSyntaxError) {
                if let option = try KernelOption.parseLine(String(line)) { options.append(option) }
            } catch {
                throw .badInput("\(path):\(number + 1): \(error.description)")
            }
        }
        return options
    }

    /// The fragment file the configure step writes and merges: one line per option.
    public var fragmentText: String {
        (["# written by kmatrix: every option this cell asks for"] + requested.flatMap(\.configLines)).joined(separator: "\n") + "\n"
    }

    /// A stable hash of what decides the config (not of who asked for what).
    public var fingerprint: String { fingerprint(environment: KernelPlan.reproducibleEnvironment) }

    func fingerprint(environment: [String: String?]) -> String {
        var lines = ["kmatrix-kernel-config-1"] + identityLines(environment: environment)
        switch base {
        case .makeTarget(let target): lines.append("base make \(target)")
        case .file(_, let sha256): lines.append("base file \(sha256)")
        }
        lines += requested.map { "option \($0.option.configLine)" + ($0.formerName.map { " formerly \($0)" } ?? "") }
        return SHA256.hex(lines.joined(separator: "\n"))
    }
}

extension KernelConfigInputs {
    /// What decides the base config alone, the `.config` a make target (`tinyconfig`,
    /// `defconfig`) writes before any option is merged: the source, the architecture and
    /// the toolchain, as for the whole config. nil for a file base (copied, never made).
    /// Cells that differ only in their options (root devices, test suites, one cell's
    /// extra option) share it, and Kconfig need not make it again: `make tinyconfig` runs
    /// Kconfig twice (allnoconfig, then olddefconfig after tiny.config), 3.8 s for riscv64
    /// here, where the whole configure step took 7.1 s.
    public var baseFingerprint: String? { baseFingerprint(environment: KernelPlan.reproducibleEnvironment) }

    func baseFingerprint(environment: [String: String?]) -> String? {
        guard case .makeTarget(let target) = base else { return nil }
        return SHA256.hex((["kmatrix-kernel-base-config-1"] + identityLines(environment: environment) + ["base make \(target)"]).joined(separator: "\n"))
    }

    /// The source, architecture, toolchain, environment and make variables, as key lines.
    func identityLines(environment: [String: String?]) -> [String] {
        var lines = ["source=\(sourceSHA256)", "arch=\(arch)", "cross=\(crossCompile ?? "")",
                     "compiler=\(toolchain.compilerName)", "version=\(toolchain.version)"]
        lines += toolchain.toolLines
        lines += KernelPlan.keyLines(environment)
        lines += makeVariables.sorted { $0.key < $1.key }.map { "var \($0.key)=\($0.value)" }
        return lines
    }

    /// These inputs without the requested options: what a base config entry records.
    public var baseOnly: KernelConfigInputs {
        var inputs = self
        inputs.requested = []
        return inputs
    }
}

/// Everything that decides what the build step produces, once the config is known: the
/// scheduler hashes it (`fingerprint`) to cache the build step. `-j`, ccache and the
/// jobserver change how fast, not what, so they are not part of it.
public struct KernelBuildInputs: Sendable, Hashable, Codable {
    public var sourceSHA256: String
    public var arch: String
    public var crossCompile: String?
    public var makeVariables: [String: String]
    public var toolchain: ToolchainIdentity
    /// sha256 of the verified final `.config`.
    public var configSHA256: String
    public var imageTarget: String
    public var dtbTargets: [String]
    /// Where the image and DTBs are looked for in the build tree: they decide which files
    /// are published, under which names.
    public var artifactPaths: [String]
    /// Whether modules are built and staged (the config has some `=m`).
    public var modules: Bool

    public init(config: KernelConfigInputs, configuration: KernelConfiguration, target: Target) {
        sourceSHA256 = config.sourceSHA256
        arch = config.arch
        crossCompile = config.crossCompile
        makeVariables = config.makeVariables
        toolchain = config.toolchain
        configSHA256 = configuration.configSHA256 ?? ""
        imageTarget = target.kernel.image.target
        dtbTargets = target.kernel.dtbs.map(\.target)
        artifactPaths = target.kernel.image.paths + target.kernel.dtbs.flatMap(\.paths)
        modules = configuration.hasModules
    }

    public var fingerprint: String { fingerprint(environment: KernelPlan.reproducibleEnvironment) }

    func fingerprint(environment: [String: String?]) -> String {
        var lines = ["kmatrix-kernel-build-3", "source=\(sourceSHA256)", "arch=\(arch)", "cross=\(crossCompile ?? "")",
                     "compiler=\(toolchain.compilerName)", "version=\(toolchain.version)", "config=\(configSHA256)",
                     "image=\(imageTarget)", "modules=\(modules)"]
        lines += toolchain.toolLines
        lines += KernelPlan.keyLines(environment)
        lines += makeVariables.sorted { $0.key < $1.key }.map { "var \($0.key)=\($0.value)" }
        lines += dtbTargets.map { "dtb \($0)" }
        lines += artifactPaths.map { "path \($0)" }
        return SHA256.hex(lines.joined(separator: "\n"))
    }
}
